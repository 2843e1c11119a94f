/**
 * What a purchase request ended as: one word per outcome, for the stat log's tally, the metrics'
 * `result` label and each worker's answer counters in shared memory (local-stock.ts sizes them from
 * this list). One list, so a new outcome cannot be counted in one place and missing in another.
 */
export const ANSWER_RESULTS = ['sold', 'soldout', 'held', 'unavailable', 'nosale', 'closed', 'limited', 'unadmitted'] as const;
export type AnswerResult = (typeof ANSWER_RESULTS)[number];

/** Each result's counter (LocalStock.countAnswer). */
export const ANSWER_INDEX = Object.fromEntries(ANSWER_RESULTS.map((r, i) => [r, i])) as Record<AnswerResult, number>;
