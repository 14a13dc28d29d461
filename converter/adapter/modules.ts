/**
 * PEFT module names → the base model's matrices. PEFT saves `base_model.model.<module>.lora_A.weight` [r, in] and
 * `….lora_B.weight` [out, r], `<module>` named as the model was when it was trained:
 *   transformers v4.47 (the released checkpoints)   language_model.model.layers.N.self_attn.q_proj
 *                                                   vision_tower.vision_model.encoder.layers.N.self_attn.q_proj
 *                                                   multi_modal_projector.linear
 *   transformers ≥ 4.52                             model.language_model.layers.N.…, model.vision_tower.…,
 *                                                   model.multi_modal_projector.linear
 * Both map to the names converter/graphs write (`dec.lN.attn.q`, `dec.lN.gate`, `vis.lN.q`, `vis.lN.fc1`, `proj`).
 */
import type { ModelConfig } from "../../shared/model/config.ts";
import { ModelFormatError } from "../../shared/errors.ts";

/** A base matrix W[out, in] an adapter module updates. */
export interface BaseMatrix {
  /** The converter's name of the matrix. */
  readonly name: string;
  readonly part: "vision" | "decoder";
  /** Vision or decoder layer (the projector counts as after the last vision layer). */
  readonly layer: number;
  readonly out: number;
  readonly in: number;
}

const PEFT_PREFIX = "base_model.model.";
const TEXT = /^(?:language_model\.model|model\.language_model)\.layers\.(\d+)\.(?:self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)$/;
const VISION = /^(?:model\.)?vision_tower\.vision_model\.encoder\.layers\.(\d+)\.(?:self_attn\.(q|k|v|out)_proj|mlp\.(fc1|fc2))$/;
const PROJECTOR = /^(?:model\.)?multi_modal_projector\.linear$/;

/** A safetensors key of a PEFT LoRA adapter, split: the module and which factor. */
export function splitKey(key: string): { module: string; factor: "A" | "B" } {
  if (key.includes("lora_magnitude_vector")) throw new ModelFormatError(`adapter_model.safetensors: ${key} is a DoRA magnitude (use_dora): not supported`);
  if (key.includes("lora_embedding_")) throw new ModelFormatError(`adapter_model.safetensors: ${key} adapts an embedding: only linear projections are supported`);
  const m = /^(.*)\.lora_([AB])(?:\.[A-Za-z0-9_-]+)?\.weight$/.exec(key);
  if (!m) throw new ModelFormatError(`adapter_model.safetensors: ${key} is not a LoRA factor (modules_to_save copies and trained biases are not supported)`);
  const module = m[1].startsWith(PEFT_PREFIX) ? m[1].slice(PEFT_PREFIX.length) : m[1];
  return { module, factor: m[2] as "A" | "B" };
}

/** The base matrix a PEFT module adapts; throws ModelFormatError naming a module the base does not have. */
export function baseMatrix(config: ModelConfig, module: string): BaseMatrix {
  const t = config.text;
  const v = config.vision;
  let m = TEXT.exec(module);
  if (m) {
    const layer = checkLayer(module, Number(m[1]), t.layers);
    const q = t.heads * t.headDim;
    const kv = t.kvHeads * t.headDim;
    const proj = m[2] ?? m[3];
    const shapes: Record<string, [string, number, number]> = {
      q: ["attn.q", q, t.hidden], k: ["attn.k", kv, t.hidden], v: ["attn.v", kv, t.hidden], o: ["attn.o", t.hidden, q],
      gate: ["gate", t.intermediate, t.hidden], up: ["up", t.intermediate, t.hidden], down: ["down", t.hidden, t.intermediate],
    };
    const [name, out, inF] = shapes[proj];
    return { name: `dec.l${layer}.${name}`, part: "decoder", layer, out, in: inF };
  }
  m = VISION.exec(module);
  if (m) {
    const layer = checkLayer(module, Number(m[1]), v.layers);
    const proj = m[2] ?? m[3];
    const shapes: Record<string, [string, number, number]> = {
      q: ["q", v.hidden, v.hidden], k: ["k", v.hidden, v.hidden], v: ["v", v.hidden, v.hidden], out: ["o", v.hidden, v.hidden],
      fc1: ["fc1", v.intermediate, v.hidden], fc2: ["fc2", v.hidden, v.intermediate],
    };
    const [name, out, inF] = shapes[proj];
    return { name: `vis.l${layer}.${name}`, part: "vision", layer, out, in: inF };
  }
  if (PROJECTOR.test(module)) return { name: "proj", part: "vision", layer: v.layers, out: config.projectionDim, in: v.hidden };
  throw new ModelFormatError(`adapter_model.safetensors: module ${module} is not a linear projection of this PaliGemma (adapted modules must be the decoder's q/k/v/o/gate/up/down_proj, SigLIP's q/k/v/out_proj or fc1/fc2, or the projector; the tied lm_head and embeddings are not supported)`);
}

function checkLayer(module: string, layer: number, layers: number): number {
  if (layer >= layers) throw new ModelFormatError(`adapter_model.safetensors: module ${module} names layer ${layer}, but the base model has ${layers}`);
  return layer;
}
