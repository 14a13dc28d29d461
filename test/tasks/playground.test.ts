import { createHash } from "node:crypto";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { PLAYGROUND_HTML, playgroundApp, registerPlayground } from "../../functions/playground/index.ts";

const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("base64");
const inline = (tag: "script" | "style"): string => new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(PLAYGROUND_HTML)![1];

describe("the playground route", () => {
  const app = new Hono();
  registerPlayground(app);

  it("serves the page at GET / as UTF-8 HTML, not cached, with a strict CSP", async () => {
    const res = await app.request("/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=UTF-8");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect(await res.text()).toBe(PLAYGROUND_HTML);
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
  });

  it("allows exactly the inline script and style by hash", async () => {
    const csp = (await app.request("/")).headers.get("content-security-policy")!;
    expect(csp).toContain(`script-src 'sha256-${sha256(inline("script"))}'`);
    expect(csp).toContain(`style-src 'sha256-${sha256(inline("style"))}'`);
    expect(PLAYGROUND_HTML.match(/<script/g)?.length).toBe(1);
    expect(PLAYGROUND_HTML).not.toMatch(/ style="/); // inline style attributes would be blocked
  });

  it("answers HEAD /, and the sub-app serves the same page", async () => {
    expect((await app.request("/", { method: "HEAD" })).status).toBe(200);
    const mounted = new Hono().route("/", playgroundApp());
    expect(await (await mounted.request("/")).text()).toBe(PLAYGROUND_HTML);
  });
});

describe("the page", () => {
  it("has a script that parses as JavaScript (nothing mangled by the string module)", () => {
    expect(() => new Function(inline("script"))).not.toThrow();
  });

  it("labels every control, names the language, and loads nothing from elsewhere", () => {
    expect(PLAYGROUND_HTML).toMatch(/^<!doctype html>\n<html lang="en">/);
    const ids = [...PLAYGROUND_HTML.matchAll(/<(?:input|select|textarea)[^>]*\bid="([^"]+)"/g)].map((m) => m[1]);
    expect(ids.length).toBeGreaterThanOrEqual(8);
    for (const id of ids) expect(PLAYGROUND_HTML, id).toContain(`<label for="${id}">`);
    expect(PLAYGROUND_HTML).not.toMatch(/\b(?:src|href)="(?:https?:)?\/\//);
    expect(PLAYGROUND_HTML).toContain('role="status"');
  });

  it("uses only the public API", () => {
    const paths = [...inline("script").matchAll(/fetch\("([^"]+)"/g)].map((m) => m[1]);
    expect(paths).toEqual(["/v1/images", "/v1/generate"]);
  });

  it("stays small", () => {
    expect(new TextEncoder().encode(PLAYGROUND_HTML).length).toBeLessThan(32 * 1024);
  });
});
