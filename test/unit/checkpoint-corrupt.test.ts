/**
 * Checkpoint.open on corrupted copies of the example checkpoints, built in a temp dir: every defect must throw
 * ModelFormatError whose message names the file, field or tensor. The example folders must exist.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Checkpoint } from "../../converter/checkpoint/checkpoint.ts";
import { hfNames } from "../../converter/checkpoint/names.ts";
import { ModelFormatError } from "../../shared/errors.ts";
import { readRaw, type RawTensor } from "../helpers/safetensors-raw.ts";

const SHARED = process.env.PALIGEMMA_SHARED_DIR ?? fileURLToPath(new URL("../../../shared/", import.meta.url));
const PG1 = join(SHARED, "golden/paligemma1-tiny");
const SHAPES = join(SHARED, "models/paligemma-shapes");
const SHARDS = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"];

const json = (path: string): any => JSON.parse(readFileSync(path, "utf8"));
const tmp = mkdtempSync(join(tmpdir(), "ckpt-bad-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));


function writeRaw(path: string, tensors: Map<string, RawTensor>): void {
  const header: Record<string, unknown> = {};
  let at = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.bytes.length] };
    at += t.bytes.length;
  }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(path, Buffer.concat([len, h, ...[...tensors.values()].map((t) => t.bytes)]));
}

let serial = 0;
/** Copies `files` of `src` into a fresh temp folder. */
function scratch(src: string, files: string[]): string {
  const dir = join(tmp, `c${serial++}`);
  mkdirSync(dir);
  for (const f of files) copyFileSync(join(src, f), join(dir, f));
  return dir;
}

const pg1Copy = () => scratch(PG1, ["config.json", "model.safetensors"]);
const shapesCopy = () => scratch(SHAPES, ["config.json", "model.safetensors.index.json", ...SHARDS]);

function editJson(path: string, edit: (j: any) => void): void {
  const j = json(path);
  edit(j);
  writeFileSync(path, JSON.stringify(j));
}

function editTensors(path: string, edit: (t: Map<string, RawTensor>) => void): void {
  const t = readRaw(path);
  edit(t);
  writeRaw(path, t);
}

async function openFails(dir: string, ...messages: RegExp[]): Promise<void> {
  const err = await Checkpoint.open(dir).then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(ModelFormatError);
  for (const m of messages) expect((err as Error).message).toMatch(m);
}

describe("corrupted checkpoints throw ModelFormatError naming the culprit", () => {
  it("model_type is not paligemma", async () => {
    const dir = pg1Copy();
    editJson(join(dir, "config.json"), (j) => (j.model_type = "llava"));
    await openFails(dir, /config\.json: unsupported model_type "llava"/);
  });

  it("text model_type llama", async () => {
    const dir = pg1Copy();
    editJson(join(dir, "config.json"), (j) => (j.text_config.model_type = "llama"));
    await openFails(dir, /config\.json: unsupported text_config\.model_type "llama"/);
  });

  it("config.json missing or not JSON", async () => {
    const dir = pg1Copy();
    writeFileSync(join(dir, "config.json"), "{ nope");
    await openFails(dir, /config\.json: not valid JSON/);
    rmSync(join(dir, "config.json"));
    await openFails(dir, /config\.json: missing/);
  });

  it("no weights at all", async () => {
    const dir = scratch(PG1, ["config.json"]);
    await openFails(dir, /neither model\.safetensors nor model\.safetensors\.index\.json/);
  });

  it("truncated safetensors", async () => {
    const dir = pg1Copy();
    const file = join(dir, "model.safetensors");
    truncateSync(file, readFileSync(file).length - 1000);
    await openFails(dir, /model\.safetensors: tensor vision_tower\.\S+: data_offsets .* run past the end of the data/);
  });

  it("header length beyond the file", async () => {
    const dir = pg1Copy();
    const file = join(dir, "model.safetensors");
    const buf = readFileSync(file);
    buf.writeBigUInt64LE(BigInt(buf.length), 0);
    writeFileSync(file, buf);
    await openFails(dir, /model\.safetensors: header length 486416 runs past the end of the file \(486416 bytes\)/);
  });

  it("a tensor with a wrong shape", async () => {
    const dir = pg1Copy();
    const name = hfNames.textLayer(0).qProj;
    editTensors(join(dir, "model.safetensors"), (t) => (t.get(name)!.shape = [32, 128]));
    await openFails(dir, new RegExp(`tensor ${name.replace(/\./g, "\\.")} \\(.*model\\.safetensors\\) has shape \\[32, 128\\], expected \\[64, 64\\]`));
  });

  it("an extra unknown tensor", async () => {
    const dir = pg1Copy();
    editTensors(join(dir, "model.safetensors"), (t) => t.set("language_model.model.extra.weight", { dtype: "F32", shape: [2], bytes: Buffer.alloc(8) }));
    await openFails(dir, /1 unknown tensor\(s\): language_model\.model\.extra\.weight/);
  });

  it("a missing tensor", async () => {
    const dir = pg1Copy();
    editTensors(join(dir, "model.safetensors"), (t) => t.delete(hfNames.projector.bias));
    await openFails(dir, /1 missing tensor\(s\): multi_modal_projector\.linear\.bias/);
  });

  it("pooling-head tensors are unknown unless vision_use_head is true", async () => {
    const dir = pg1Copy();
    const head = `${hfNames.visionHeadPrefix}probe`;
    editTensors(join(dir, "model.safetensors"), (t) => t.set(head, { dtype: "F32", shape: [1, 1, 32], bytes: Buffer.alloc(128) }));
    await openFails(dir, /unknown tensor\(s\): vision_tower\.vision_model\.head\.probe/);
    editJson(join(dir, "config.json"), (j) => (j.vision_config.vision_use_head = true));
    expect((await Checkpoint.open(dir)).tensorNames()).toContain(head);
  });

  it("index.json points to a missing shard", async () => {
    const dir = shapesCopy();
    editJson(join(dir, "model.safetensors.index.json"), (j) => (j.weight_map[hfNames.finalNorm] = "model-00003-of-00002.safetensors"));
    await openFails(dir, /model\.safetensors\.index\.json: maps language_model\.model\.norm\.weight to shard model-00003-of-00002\.safetensors, which does not exist/);
  });

  it("index.json names a shard that lacks the tensor", async () => {
    const dir = shapesCopy();
    editJson(join(dir, "model.safetensors.index.json"), (j) => (j.weight_map[hfNames.embedTokens] = SHARDS[1]));
    await openFails(dir, /tensor language_model\.model\.embed_tokens\.weight is mapped to .*model-00002-of-00002\.safetensors, which does not contain it/);
  });

  it("a shard holds a tensor the index does not map there", async () => {
    const dir = shapesCopy();
    editJson(join(dir, "model.safetensors.index.json"), (j) => delete j.weight_map[hfNames.finalNorm]);
    await openFails(dir, /model-0000\d-of-00002\.safetensors: tensor language_model\.model\.norm\.weight is not mapped to this shard/);
  });

  it("index.json shard names must be plain file names", async () => {
    const dir = shapesCopy();
    editJson(join(dir, "model.safetensors.index.json"), (j) => (j.weight_map[hfNames.finalNorm] = "../elsewhere.safetensors"));
    await openFails(dir, /weight_map\.language_model\.model\.norm\.weight = "\.\.\/elsewhere\.safetensors" is not a file name/);
  });

  it.each([
    ["F64", 8],
    ["I32", 4],
  ])("a %s tensor", async (dtype, size) => {
    const dir = pg1Copy();
    const name = hfNames.finalNorm;
    editTensors(join(dir, "model.safetensors"), (t) => t.set(name, { dtype, shape: [64], bytes: Buffer.alloc(64 * size) }));
    await openFails(dir, new RegExp(`tensor ${name.replace(/\./g, "\\.")} \\(.*model\\.safetensors\\) has dtype ${dtype}`));
  });

  it("text_config.vocab_size disagrees with the embedding rows", async () => {
    const dir = pg1Copy();
    editJson(join(dir, "config.json"), (j) => (j.text_config.vocab_size = 448));
    await openFails(dir, /embed_tokens\.weight \(.*\) has 400 rows but text_config\.vocab_size is 448/);
  });

  it("an explicit lm_head must have the embedding's shape", async () => {
    const dir = pg1Copy();
    const file = join(dir, "model.safetensors");
    editTensors(file, (t) => t.set(hfNames.lmHead, { ...t.get(hfNames.embedTokens)! }));
    expect((await Checkpoint.open(dir)).shape(hfNames.lmHead)).toEqual([400, 64]);
    editTensors(file, (t) => (t.get(hfNames.lmHead)!.shape = [64, 400]));
    await openFails(dir, /tensor language_model\.lm_head\.weight .* has shape \[64, 400\], expected \[400, 64\]/);
  });

  it("preprocessor_config.json: non-bicubic resample, wrong size", async () => {
    const dir = scratch(SHAPES, ["config.json", "model.safetensors.index.json", ...SHARDS, "preprocessor_config.json"]);
    const pre = join(dir, "preprocessor_config.json");
    editJson(pre, (j) => (j.resample = 2));
    await openFails(dir, /preprocessor_config\.json: resample must be 3 \(bicubic\), got 2/);
    editJson(pre, (j) => ((j.resample = 3), (j.size = { height: 224, width: 224 })));
    await openFails(dir, /preprocessor_config\.json: size\.height 224 must equal vision_config\.image_size 96/);
    editJson(pre, (j) => (j.size = { height: 96, width: 64 }));
    await openFails(dir, /size\.height 96 must equal size\.width 64/);
  });

  it("reading after close throws", async () => {
    const ckpt = await Checkpoint.open(PG1);
    ckpt.close();
    await expect(ckpt.read(hfNames.finalNorm)).rejects.toThrow(/closed/);
  });
});
