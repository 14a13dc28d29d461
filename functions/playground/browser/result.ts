/**
 * A finished answer on the page: boxes from the done event's `detections` / `segments` (original image pixels)
 * drawn into an SVG whose viewBox is the image's natural size, so no scaling happens here; segment masks painted
 * under them; the objects listed; the timings the server measured next to the browser's.
 */
import type { Detection, Segment } from "../../../shared/tasks/loc-answer.ts";
import { paintMask } from "./masks.ts";

/** The `done` event of `POST /v1/generate`, as far as the page reads it (shared/api/native-format.ts). */
export interface GenerateResult {
  readonly text: string;
  readonly finish_reason: string;
  readonly usage?: {
    readonly prompt_tokens?: number;
    readonly completion_tokens?: number;
    readonly timings?: { readonly time_to_first_token_ms?: number; readonly tokens_per_second?: number; readonly total_ms?: number };
    readonly prefix_cache?: { readonly soft_tokens?: string; readonly kv?: string; readonly cached_tokens?: number };
  };
  readonly detections?: readonly Detection[];
  readonly segments?: readonly Segment[];
  /** How many malformed objects the server left out. */
  readonly dropped?: number;
}

/** The page's elements a result is drawn into, and the image's natural size. */
export interface ResultView {
  readonly section: HTMLElement;
  readonly svg: SVGSVGElement;
  readonly canvas: HTMLCanvasElement;
  readonly tags: HTMLElement;
  readonly list: HTMLElement;
  readonly droppedNote: HTMLElement;
  readonly width: number;
  readonly height: number;
}

const SVG_NS = "http://www.w3.org/2000/svg";
/** The box colours of style.ts (.c0 … .c5), for mask pixels. */
const MASK_RGB: readonly (readonly [number, number, number])[] = [
  [230, 25, 75], [60, 180, 75], [67, 99, 216], [245, 130, 49], [145, 30, 180], [0, 128, 128],
];

/** `v` with one decimal at most. */
export function fixed(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

/** Draws the result's objects (nothing when it has no box fields). */
export function draw(result: GenerateResult, view: ResultView): void {
  if (!result.detections && !result.segments) return;
  view.section.hidden = false;
  const colors = new Map<string, number>();
  const objects = (result.detections ?? [])
    .map((d) => ({ d: d as Detection | Segment, segment: false }))
    .concat((result.segments ?? []).map((s) => ({ d: s, segment: true })));
  objects.forEach((o, i) => {
    const d = o.d;
    const b = d.box;
    if (!colors.has(d.label)) colors.set(d.label, colors.size % 6);
    const index = colors.get(d.label)!;
    const color = `c${index}`;
    const rect = document.createElementNS(SVG_NS, "rect");
    rect.setAttribute("x", String(b.x1));
    rect.setAttribute("y", String(b.y1));
    rect.setAttribute("width", String(b.x2 - b.x1));
    rect.setAttribute("height", String(b.y2 - b.y1));
    rect.setAttribute("vector-effect", "non-scaling-stroke");
    rect.setAttribute("class", color + (o.segment ? " segment" : ""));
    rect.dataset.label = d.label;
    rect.dataset.index = String(i);
    view.svg.appendChild(rect);
    const mask = o.segment ? (d as Segment).mask : null;
    const maskPixels = mask ? paintMask(view.canvas, mask, MASK_RGB[index]) : 0;
    if (mask) view.canvas.dataset.masks = String(Number(view.canvas.dataset.masks) + 1);
    const tag = document.createElement("span");
    tag.className = `tag ${color}${b.y1 / view.height < 0.12 ? " inside" : ""}`;
    tag.textContent = d.label;
    tag.style.left = `${(100 * b.x1) / view.width}%`;
    tag.style.top = `${(100 * b.y1) / view.height}%`;
    view.tags.appendChild(tag);
    const item = document.createElement("li");
    const kind = !o.segment
      ? ""
      : mask
        ? ` (segment, mask of ${maskPixels} px)`
        : ` (segment, 16 codes; mask not decoded: ${(d as Segment).mask_reason || "no decoder"})`;
    item.textContent = `${d.label}: x ${fixed(b.x1)}–${fixed(b.x2)}, y ${fixed(b.y1)}–${fixed(b.y2)} px${kind}`;
    view.list.appendChild(item);
  });
  if (objects.length === 0) view.droppedNote.textContent = "No objects found.";
  if (result.dropped) view.droppedNote.textContent = `${result.dropped} malformed object(s) in the answer were left out.`;
}

/** Fills the timings list: the server's numbers and the browser's. */
export function showTimings(result: GenerateResult, clientFirstMs: number, clientTotalMs: number, set: (id: string, text: string) => void): void {
  const usage = result.usage ?? {};
  const t = usage.timings ?? {};
  const cache = usage.prefix_cache ?? {};
  set("t-ttft", `${t.time_to_first_token_ms} ms in the server, ${Math.round(clientFirstMs)} ms in the browser`);
  set("t-tps", t.tokens_per_second ? `${fixed(t.tokens_per_second)} tokens/s` : "– (one token)");
  set("t-tokens", `${usage.prompt_tokens} prompt, ${usage.completion_tokens} generated (${result.finish_reason})`);
  set("t-cache", `image soft tokens ${cache.soft_tokens}, prefill KV ${cache.kv} (${cache.cached_tokens} tokens reused)`);
  set("t-total", `${t.total_ms} ms in the server, ${Math.round(clientTotalMs)} ms round trip`);
}
