/** A stage's queue of concurrent step calls (shared/pipeline/step-queue.ts): passes first come first served, up to a row limit. */
import { describe, expect, it } from "vitest";
import type { RowsReply, RowsRequest } from "../../shared/api/stage-rpc.ts";
import { StepQueue } from "../../shared/pipeline/step-queue.ts";

const row = (session: string): RowsRequest => ({ session, position: 0, count: 1, rows: new Float32Array(1) });
const reply = (r: RowsRequest): RowsReply => ({ ok: true, rows: new Float32Array([r.session.length]) }) as unknown as RowsReply;

function queue(limit: number, fail: (rows: readonly RowsRequest[]) => boolean = () => false) {
  const passes: string[][] = [];
  const q = new StepQueue(async (rows) => {
    passes.push(rows.map((r) => r.session));
    if (fail(rows)) throw new Error(`pass ${passes.length} failed`);
    return rows.map(reply);
  }, () => limit);
  return { q, passes };
}

describe("a stage's step queue", () => {
  it("one row a pass: calls served one by one, in arrival order, each getting its own replies", async () => {
    const { q, passes } = queue(1);
    const got = await Promise.all(["a", "bb", "ccc"].map((s) => q.push([row(s)])));
    expect(passes).toEqual([["a"], ["bb"], ["ccc"]]);
    expect(got.map((g) => g.length)).toEqual([1, 1, 1]);
  });

  it("a limit of 3 rows: whole calls, as many as fit, the rest in the next pass", async () => {
    const { q, passes } = queue(3);
    await Promise.all([q.push([row("a"), row("b")]), q.push([row("c")]), q.push([row("d"), row("e")]), q.push([row("f")])]);
    expect(passes).toEqual([["a", "b", "c"], ["d", "e", "f"]]);
  });

  it("a call of more rows than the limit runs whole, alone", async () => {
    const { q, passes } = queue(1);
    await Promise.all([q.push([row("a"), row("b"), row("c")]), q.push([row("d")])]);
    expect(passes).toEqual([["a", "b", "c"], ["d"]]);
  });

  it("a failed pass rejects its own calls only; the queue goes on", async () => {
    const { q, passes } = queue(1, (rows) => rows[0].session === "b");
    const got = await Promise.allSettled(["a", "b", "c"].map((s) => q.push([row(s)])));
    expect(got.map((g) => g.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(passes).toEqual([["a"], ["b"], ["c"]]);
  });
});
