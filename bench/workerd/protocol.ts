/**
 * The loopback protocol between the benchmark (Node) and its worker (workerd), JSON over POST:
 *
 *   /load      LoadRequest → { fetchMs, loadMs }   fetches `<source>/graph|weights|feeds`, creates a session
 *   /calibrate { id, warmup } → { batch }           warm-up runs, then the batch size (timing.ts)
 *   /sample    { id, batch, count } → { samples }   per-run ms, timed inside the isolate
 *   /release   { id } → {}
 *
 * Every reply is `{ ok: true, … }` or `{ ok: false, error }`.
 */

/** Body of `POST /load`. */
export interface LoadRequest {
  readonly id: string;
  /** Loopback base URL of this graph's files, `http://127.0.0.1:<port>/<id>`. */
  readonly source: string;
  /** External-data `location` the graph refers to; the bytes of `<source>/weights` are mounted under it. */
  readonly weightsName: string;
  /** Graph inputs in order; `<source>/feeds` is their float32 data concatenated in the same order. */
  readonly feeds: readonly { readonly name: string; readonly dims: readonly number[] }[];
  /** Create the session with weight pre-packing (as the runtime does for decoder/head stages decoding on onnxruntime). */
  readonly prepack: boolean;
}

/** Reply of `POST /load`: ms spent downloading the files and creating the session. */
export interface LoadReply {
  readonly fetchMs: number;
  readonly loadMs: number;
}
/** Body of `POST /calibrate`. */
export interface CalibrateRequest {
  readonly id: string;
  readonly warmup: number;
}
/** Reply of `POST /calibrate`: runs per timed sample. */
export interface CalibrateReply {
  readonly batch: number;
}
/** Body of `POST /sample`. */
export interface SampleRequest {
  readonly id: string;
  readonly batch: number;
  readonly count: number;
}
/** Reply of `POST /sample`: mean ms per run of each sample. */
export interface SampleReply {
  readonly samples: number[];
}
/** Body of `POST /release`. */
export interface ReleaseRequest {
  readonly id: string;
}

/** What a reply carries on success, or the error. */
export type Reply<T> = ({ readonly ok: true } & T) | { readonly ok: false; readonly error: string };

/** Only the benchmark's own loopback server may be a source. */
export function isLoopbackSource(source: string): boolean {
  return /^http:\/\/127\.0\.0\.1:\d+\//.test(source);
}
