/**
 * Candidate selection for the sampler: the allowed id ranges of a vocabulary mask, top-k by a bounded heap
 * (O(V log k), sorted), and a draw from the top-p nucleus by a log-probability histogram (O(V) plus a sort of one
 * bin).
 */

/** Ids of `logits` that may be sampled, as flat [start, end) pairs, ascending. */
export function allowedRanges(vocab: number, validTokens: number, banned: readonly number[]): number[] {
  const limit = Math.min(vocab, validTokens);
  const cuts = [...new Set(banned)].filter((id) => id >= 0 && id < limit).sort((a, b) => a - b);
  const ranges: number[] = [];
  let start = 0;
  for (const id of cuts) {
    if (id > start) ranges.push(start, id);
    start = id + 1;
  }
  if (limit > start) ranges.push(start, limit);
  return ranges;
}

/** Orders ids by logit descending, then id ascending (total, also for equal or infinite logits). */
export function byLogitDesc(logits: Float32Array): (a: number, b: number) => number {
  return (a, b) => (logits[a] > logits[b] ? -1 : logits[a] < logits[b] ? 1 : a - b);
}

/** The k allowed ids with the largest logits (ties → lower id), sorted descending. O(V log k). */
export function topKIds(logits: Float32Array, ranges: readonly number[], k: number): number[] {
  // Min-heap of ids; the root is the worst kept id.
  const heap = new Int32Array(k);
  let size = 0;
  const worse = (a: number, b: number): boolean => logits[a] < logits[b] || (logits[a] === logits[b] && a > b);
  const siftDown = (pos: number): void => {
    for (;;) {
      const left = 2 * pos + 1;
      if (left >= size) return;
      const right = left + 1;
      const child = right < size && worse(heap[right], heap[left]) ? right : left;
      if (!worse(heap[child], heap[pos])) return;
      [heap[child], heap[pos]] = [heap[pos], heap[child]];
      pos = child;
    }
  };
  for (let r = 0; r < ranges.length; r += 2) {
    for (let i = ranges[r]; i < ranges[r + 1]; i++) {
      if (size < k) {
        let pos = size++;
        heap[pos] = i;
        while (pos > 0) {
          const parent = (pos - 1) >> 1;
          if (!worse(heap[pos], heap[parent])) break;
          [heap[pos], heap[parent]] = [heap[parent], heap[pos]];
          pos = parent;
        }
      } else if (worse(heap[0], i)) {
        heap[0] = i;
        siftDown(0);
      }
    }
  }
  return Array.from(heap.subarray(0, size)).sort(byLogitDesc(logits));
}

const BINS_PER_NAT = 4; // histogram resolution in −log(weight) units
const BINS = 257; // bins 0..255 cover 64 nats below the max; the last bin holds everything further down

/**
 * Draws from the top-p nucleus of the allowed ids: the smallest set of highest-logit ids (ties → lower id) whose
 * weight reaches `topP` of the total, where `weight(i) = exp((logits[i] − max) · invT)`. `u` is uniform in [0, 1).
 *
 * One pass builds a histogram of the weights by −log(weight) (¼-nat bins). Bins before the one where the
 * cumulative weight reaches the target lie wholly inside the nucleus; only the ids of that boundary bin are
 * sorted and taken until the target is met. The draw then picks a bin by its weight and walks only that bin's
 * ids. Cost: O(V) plus a sort of one bin, never of the vocabulary; the nucleus is never materialised.
 */
export function drawNucleus(
  logits: Float32Array,
  ranges: readonly number[],
  max: number,
  invT: number,
  topP: number,
  u: number,
): number {
  const weight = (i: number): number => Math.exp((logits[i] - max) * invT);
  const bin = (i: number): number => {
    const d = (max - logits[i]) * invT; // ≥ 0; +Infinity for a −Infinity logit
    return d < (BINS - 1) / BINS_PER_NAT ? Math.floor(d * BINS_PER_NAT) : BINS - 1;
  };
  const mass = new Float64Array(BINS);
  for (let r = 0; r < ranges.length; r += 2) {
    for (let i = ranges[r]; i < ranges[r + 1]; i++) mass[bin(i)] += weight(i);
  }
  let total = 0;
  for (let b = 0; b < BINS; b++) total += mass[b];
  const target = topP * total;
  let boundary = 0; // first bin where the cumulative weight reaches the target
  let before = 0; // weight of the bins before it
  while (boundary < BINS - 1 && before + mass[boundary] < target) before += mass[boundary++];

  // The boundary bin, best first; keep ids until the target is met (at least one id overall).
  const edge = idsInBin(ranges, bin, boundary).sort(byLogitDesc(logits));
  let taken = 0;
  let kept = before; // before < target, so the first edge id is always taken
  while (taken < edge.length && (taken === 0 || kept < target)) kept += weight(edge[taken++]);

  let x = u * kept;
  if (x < before) {
    let b = -1; // the inner bin x falls in (the last non-empty one if rounding overshoots)
    for (let c = 0; c < boundary; c++) {
      if (mass[c] === 0) continue;
      b = c;
      if (x < mass[c]) break;
      x -= mass[c];
    }
    // mass[b] was summed in id order, so walking the bin in id order meets the same partial sums.
    return walk(idsInBin(ranges, bin, b), weight, x);
  }
  return walk(edge.slice(0, taken), weight, x - before);
}

function idsInBin(ranges: readonly number[], bin: (i: number) => number, b: number): number[] {
  const ids: number[] = [];
  for (let r = 0; r < ranges.length; r += 2) {
    for (let i = ranges[r]; i < ranges[r + 1]; i++) if (bin(i) === b) ids.push(i);
  }
  return ids;
}

/** The first id at which the running weight exceeds x (the last positive-weight id if rounding overshoots). */
export function walk(ids: readonly number[], weight: (i: number) => number, x: number): number {
  let cum = 0;
  let last = ids[0];
  for (const i of ids) {
    const w = weight(i);
    if (w === 0) continue;
    cum += w;
    last = i;
    if (x < cum) return i;
  }
  return last;
}
