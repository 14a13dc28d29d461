/**
 * The playground's browser code (no framework), bundled by scripts/build-playground.ts into one inline script
 * (functions/playground/script.built.ts). It uses the public API only: `POST /v1/images` (raw body) →
 * image_id, then `POST /v1/generate` with `stream: true`, reading the SSE frames (`event: token` / `done` /
 * `error`) from `fetch`'s body (sse.ts). The answer's boxes and masks are drawn by result.ts.
 */
import { draw, showTimings, type GenerateResult } from "./result.ts";
import { readEvents } from "./sse.ts";

/** The element `#id`, which must be a `type` (the markup is page.ts). */
function byId<T extends Element>(id: string, type: { new (): T; prototype: T }): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`the page has no ${type.name} #${id}`);
  return found;
}

const form = byId("form", HTMLFormElement);
const fileInput = byId("image-file", HTMLInputElement);
const drop = byId("drop", HTMLElement);
const taskSelect = byId("task", HTMLSelectElement);
const stage = byId("stage", HTMLElement);
const preview = byId("preview", HTMLImageElement);
const svg = byId("boxes", SVGSVGElement);
const tags = byId("tags", HTMLElement);
const canvas = byId("masks", HTMLCanvasElement);
const output = byId("output", HTMLElement);
const statusLine = byId("status", HTMLElement);
const list = byId("objects-list", HTMLElement);
const droppedNote = byId("dropped", HTMLElement);
const objectsSection = byId("objects-section", HTMLElement);
const runButton = byId("run", HTMLButtonElement);
const stopButton = byId("stop", HTMLButtonElement);
const field = (id: string): string => byId(id, HTMLInputElement).value;

const session = `playground-${Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => (b + 256).toString(16).slice(1)).join("")}`;

/** The chosen image: its file, object URL, id once uploaded, and natural size once decoded. */
interface ChosenImage {
  readonly file: File;
  readonly url: string;
  id: string | null;
  width: number;
  height: number;
}

let image: ChosenImage | null = null;
/** The running request's controller. */
let controller: AbortController | null = null;

function setStatus(text: string, state?: string): void {
  statusLine.textContent = text;
  statusLine.dataset.state = state || "";
}

function showTaskFields(): void {
  const task = taskSelect.value;
  document.querySelectorAll<HTMLElement>("[data-for]").forEach((el) => {
    el.hidden = el.dataset.for!.split(" ").indexOf(task) < 0;
  });
}

function setTiming(id: string, text: string): void {
  byId(id, HTMLElement).textContent = text;
}

function clearResult(): void {
  output.textContent = "";
  output.dataset.state = "idle";
  output.dataset.tokens = "0";
  svg.replaceChildren();
  canvas.getContext("2d")!.clearRect(0, 0, canvas.width, canvas.height);
  canvas.dataset.masks = "0";
  tags.replaceChildren();
  list.replaceChildren();
  droppedNote.textContent = "";
  objectsSection.hidden = true;
  ["t-ttft", "t-tps", "t-tokens", "t-cache", "t-total"].forEach((id) => setTiming(id, "–"));
}

function setImage(file: File | null | undefined): void {
  if (!file) return;
  if (!/^image\/(png|jpeg|webp|gif)$/.test(file.type)) {
    setStatus(`Unsupported image type ${file.type || "(unknown)"}: use PNG, JPEG, WebP or GIF.`, "error");
    return;
  }
  if (image) URL.revokeObjectURL(image.url);
  const chosen: ChosenImage = { file, url: URL.createObjectURL(file), id: null, width: 0, height: 0 };
  image = chosen;
  clearResult();
  preview.src = chosen.url;
  preview.decode().then(
    () => {
      chosen.width = preview.naturalWidth;
      chosen.height = preview.naturalHeight;
      svg.setAttribute("viewBox", `0 0 ${chosen.width} ${chosen.height}`);
      canvas.width = chosen.width;
      canvas.height = chosen.height;
      preview.alt = `The selected image, ${file.name}, ${chosen.width} by ${chosen.height} pixels`;
      stage.hidden = false;
      setStatus(`Image ready: ${file.name} (${chosen.width}×${chosen.height}).`, "ready");
    },
    () => setStatus("The browser could not read this image.", "error"),
  );
}

/** The message of an API error body, with the status. */
function apiMessage(json: { error?: { message?: string } } | null, response: Response): string {
  const error = json && json.error;
  return error && error.message ? `${error.message} (HTTP ${response.status})` : `HTTP ${response.status}`;
}

function headers(type: string): Record<string, string> {
  const h: Record<string, string> = { "content-type": type };
  const key = field("api-key").trim();
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

/** The `POST /v1/generate` body for the form's task. */
function requestBody(chosen: ChosenImage): Record<string, unknown> {
  const body: Record<string, unknown> = {
    image_id: chosen.id,
    stream: true,
    session,
    max_tokens: Number(field("max-tokens")),
    temperature: Number(field("temperature")),
  };
  const task = taskSelect.value;
  if (task === "prompt") {
    body.prompt = byId("prompt", HTMLTextAreaElement).value;
    return body;
  }
  body.task = task;
  if (task === "caption" || task === "answer") body.lang = field("lang").trim() || "en";
  if (task === "answer") body.question = field("question");
  if (task === "detect" || task === "segment") {
    body.objects = field("objects")
      .split(/[;,]/)
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
  }
  return body;
}

async function run(): Promise<void> {
  const chosen = image;
  if (!chosen || !chosen.width) {
    setStatus("Pick an image first.", "error");
    return;
  }
  const abort = new AbortController();
  controller = abort;
  runButton.disabled = true;
  stopButton.disabled = false;
  clearResult();
  try {
    if (!chosen.id) {
      setStatus("Uploading the image…", "busy");
      const up = await fetch("/v1/images", { method: "POST", headers: headers(chosen.file.type), body: chosen.file, signal: abort.signal });
      const upJson = await up.json().catch(() => null);
      if (!up.ok) throw new Error(apiMessage(upJson, up));
      chosen.id = upJson.image_id;
    }
    setStatus("Generating…", "busy");
    output.dataset.state = "streaming";
    const started = performance.now();
    let firstAt: number | null = null;
    let text = "";
    let count = 0;
    let result: GenerateResult | null = null;
    const response = await fetch("/v1/generate", {
      method: "POST",
      headers: headers("application/json"),
      body: JSON.stringify(requestBody(chosen)),
      signal: abort.signal,
    });
    if (!response.ok) throw new Error(apiMessage(await response.json().catch(() => null), response));
    await readEvents(response.body!, (name, data) => {
      const payload = JSON.parse(data);
      if (name === "token") {
        if (firstAt === null) firstAt = performance.now();
        text += payload.text;
        output.textContent = text;
        output.dataset.tokens = String(++count);
      } else if (name === "done") {
        result = payload as GenerateResult;
      } else if (name === "error") {
        throw new Error(payload.error.message);
      }
    });
    const done = result as GenerateResult | null;
    if (!done) throw new Error("the stream ended without a result");
    output.textContent = done.text;
    output.dataset.state = "done";
    draw(done, { section: objectsSection, svg, canvas, tags, list, droppedNote, width: chosen.width, height: chosen.height });
    showTimings(done, (firstAt || performance.now()) - started, performance.now() - started, setTiming);
    const found = (done.detections || []).length + (done.segments || []).length;
    setStatus(`Done: ${count} token(s)${done.detections || done.segments ? `, ${found} object(s).` : "."}`, "done");
  } catch (err) {
    const e = err as { name?: string; message?: string } | null;
    output.dataset.state = "error";
    if (e && e.name === "AbortError") setStatus("Stopped.", "stopped");
    else setStatus(`Error: ${e && e.message ? e.message : String(err)}`, "error");
  } finally {
    controller = null;
    runButton.disabled = false;
    stopButton.disabled = true;
  }
}

fileInput.addEventListener("change", () => setImage(fileInput.files && fileInput.files[0]));
["dragenter", "dragover"].forEach((type) => {
  document.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
});
document.addEventListener("dragleave", (e) => {
  if (e.relatedTarget === null) drop.classList.remove("over");
});
document.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  setImage(e.dataTransfer && e.dataTransfer.files[0]);
});
document.addEventListener("paste", (e) => {
  const file = e.clipboardData && e.clipboardData.files[0];
  if (file) setImage(file);
});
taskSelect.addEventListener("change", showTaskFields);
form.addEventListener("submit", (e) => {
  e.preventDefault();
  void run();
});
stopButton.addEventListener("click", () => {
  if (controller) controller.abort();
});
showTaskFields();
clearResult();
document.documentElement.dataset.ready = "true";
