/**
 * @pushcall/client — the call coordinator SDK. Platform-neutral: no Node-only imports.
 * See docs/client-sdk.md.
 */
export { CallCoordinator, apnsPushConfig, fcmPushConfig } from './coordinator.js';
export type {
  CallCoordinatorOptions,
  CallDirection,
  CallSnapshot,
  CoordinatorEvent,
  CoordinatorListener,
  Observable,
  PushConfig,
  TimelineEntry,
  TimelineLane,
} from './coordinator.js';
export { CALL_STATES, TRANSITIONS, canTransition, checkTransition, isLive, isRinging } from './state.js';
export type { CallState } from './state.js';
export type {
  Action,
  AnswerAction,
  CallDetails,
  CallUiDelegate,
  CallUiPort,
  Clock,
  EndAction,
  HandleType,
  IncomingInvite,
  IncomingPush,
  PushContactParams,
  PushHandler,
  PushPort,
  PushTransport,
  RegistrationState,
  ReportIncomingError,
  ReportIncomingResult,
  SetHeldAction,
  SetMutedAction,
  SipCallState,
  SipDelegate,
  SipPort,
  StartAction,
  TimerHandle,
} from './ports.js';
export { PAYLOAD_VERSION, decodePush, isExpired, toApnsDictionary, toFcmData } from './payload.js';
export type { DecodedPush, InvalidPayloadReason, PushPayload, PushType, RefreshPush } from './payload.js';
export { endReasonForCancel, endReasonForCancelHeader, parseReasonHeader } from './reason.js';
export type { EndReason, SipReason } from './reason.js';
export {
  INVALID_PUSH_NAME,
  INVALID_PUSH_UUID,
  NAMESPACE_DNS,
  NAMESPACE_URL,
  PUSHCALL_CALL_ID_NAMESPACE,
  callUuid,
  isUuid,
  normalizeUuid,
  randomUuid,
  sha1,
  utf8Encode,
  uuidV5,
} from './uuid.js';
export {
  ActionError,
  CLIENT_ERROR_CODES,
  ClientError,
  HandlerError,
  IllegalTransitionError,
  InvalidPayloadError,
  ReportFailedError,
  SipPortError,
  UnknownCallError,
  isClientError,
} from './errors.js';
export type { ClientErrorCode } from './errors.js';
// React Native adapter (structural types only; the RN packages are the app's dependencies).
export {
  CALLKEEP_NATIVE_EVENTS,
  ReactNativeCallAdapter,
  VOIP_PUSH_NATIVE_EVENTS,
  callKeepEndReason,
} from './adapters/react-native.js';
export type {
  CallKeepDisplayErrorCode,
  CallKeepEventArgs,
  CallKeepEventName,
  CallKeepInitialEvent,
  CallKeepModule,
  ReactNativeAdapterOptions,
  VoipPushEventName,
  VoipPushModule,
} from './adapters/react-native.js';
// SIP.js adapter (type-only imports of sip.js; the app passes SIP.js's classes in).
export {
  SipJsAdapter,
  addContactUriParams,
  escapeParamValue,
  pnsFromFeatureCaps,
  pushContactUriParams,
  sdpHasVideo,
  staticSessionDescriptionHandlerFactory,
} from './adapters/sipjs.js';
export type {
  RegistrationInfo,
  SipJsAdapterOptions,
  SipJsClasses,
  StaticSdhOptions,
  StaticSessionDescriptionHandler,
} from './adapters/sipjs.js';
