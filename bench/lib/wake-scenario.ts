/**
 * The wake benchmarks' calls (bench/wake.ts, bench/wake-cluster.ts): half iPhones, every
 * user answers 300–1000 ms after the phone rings, talks 500 ms; callers give up after 15 s.
 */
export const WAKE_SCENARIO = {
  iosShare: 0.5,
  answerMix: { answer: 1, decline: 0, ignore: 0 },
  answerDelayMs: [300, 1000] as [number, number],
  talkMs: 500,
  giveUpMs: 15_000,
  callers: 20,
  registerConcurrency: 200,
};
