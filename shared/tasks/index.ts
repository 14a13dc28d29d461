/**
 * PaliGemma tasks as first-class requests and answers: task request → prefix ({@link resolvePrefix}),
 * `<loc>`/`<seg>` answer → boxes in image pixels ({@link parseLocAnswer}, {@link answerFields}), and the
 * accuracy metrics the eval uses ({@link summarize}).
 */
export {
  DEFAULT_LANG,
  MAX_OBJECTS,
  TASK_NAMES,
  prefixTask,
  resolvePrefix,
  taskFields,
  taskPrefix,
  taskSchema,
  type PromptOrTask,
  type TaskName,
  type TaskRequest,
} from "./request.ts";
export {
  LOC_BINS,
  MASK_UNAVAILABLE,
  hasLocTokens,
  locBox,
  parseLocAnswer,
  type Box,
  type Detection,
  type DroppedObject,
  type ImageSize,
  type LocAnswer,
  type Segment,
  type SegmentMask,
} from "./loc-answer.ts";
export { answerFields, type LocAnswerFields } from "./answer-fields.ts";
export {
  IOU_THRESHOLD,
  iou,
  matchGreedy,
  scoreDetection,
  summarize,
  type CaseOutcome,
  type DetectionMetrics,
  type DetectionScore,
  type EvalMetrics,
  type LabeledBox,
  type Match,
} from "./metrics.ts";
