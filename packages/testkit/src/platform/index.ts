export { SimulatedCallUi, createSequence } from './simulated-call-ui.js';
export type {
  Sequence,
  SimActionRecord,
  SimActionStatus,
  SimCall,
  SimCallState,
  SimEndedBy,
  SimLogEntry,
  SimulatedCallUiOptions,
} from './simulated-call-ui.js';
export { SimulatedIos, IOS_BLOCKED_MESSAGE, IOS_KILL_MESSAGE } from './simulated-ios.js';
export type { SimulatedIosOptions, VoipDeliveryResult } from './simulated-ios.js';
export { SimulatedAndroid } from './simulated-android.js';
export type { FcmDeliveryResult, FcmPriority, SimulatedAndroidOptions } from './simulated-android.js';
