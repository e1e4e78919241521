export { runDemo, type DemoOptions, type DemoOutput, type DemoResult, type ScenarioResult } from './run.js';
export { renderLadder, sortRows, type LadderRow, type LadderOptions, type Lane } from './ladder.js';
