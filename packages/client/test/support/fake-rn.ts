/**
 * Fake react-native-callkeep and react-native-voip-push-notification modules: they record
 * every call the adapter makes and replay recorded event sequences, the way the native
 * side would emit them.
 */
import type { CallKeepEventName, CallKeepModule, VoipPushEventName, VoipPushModule } from '../../src/adapters/react-native.js';

export interface RecordedCall {
  readonly method: string;
  readonly args: readonly unknown[];
}

export class FakeCallKeep implements CallKeepModule {
  readonly calls: RecordedCall[] = [];
  readonly listeners = new Map<CallKeepEventName, (args: unknown) => void>();

  private rec(method: string, args: unknown[]): void {
    this.calls.push({ method, args });
  }
  called(method: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  addEventListener(type: CallKeepEventName, handler: (args: unknown) => void): void {
    this.listeners.set(type, handler);
  }
  removeEventListener(type: CallKeepEventName): void {
    this.listeners.delete(type);
  }
  /** Native emits a JS event. */
  emit(type: CallKeepEventName, data?: unknown): void {
    const l = this.listeners.get(type);
    if (!l) throw new Error(`no listener for ${type}`);
    l(data);
  }

  displayIncomingCall(...args: unknown[]): void {
    this.rec('displayIncomingCall', args);
  }
  updateDisplay(...args: unknown[]): void {
    this.rec('updateDisplay', args);
  }
  reportEndCallWithUUID(...args: unknown[]): void {
    this.rec('reportEndCallWithUUID', args);
  }
  answerIncomingCall(...args: unknown[]): void {
    this.rec('answerIncomingCall', args);
  }
  endCall(uuid: string): void {
    this.rec('endCall', [uuid]);
    // CXCallController → CXEndCallAction → RNCallKeepPerformEndCallAction
    this.listeners.get('endCall')?.({ callUUID: uuid.toUpperCase() });
  }
  setMutedCall(...args: unknown[]): void {
    this.rec('setMutedCall', args);
  }
  setOnHold(...args: unknown[]): void {
    this.rec('setOnHold', args);
  }
  startCall(uuid: string, handle: string, ...rest: unknown[]): void {
    this.rec('startCall', [uuid, handle, ...rest]);
    this.listeners.get('didReceiveStartCallAction')?.({ callUUID: uuid.toUpperCase(), handle });
  }
  reportConnectingOutgoingCallWithUUID(...args: unknown[]): void {
    this.rec('reportConnectingOutgoingCallWithUUID', args);
  }
  reportConnectedOutgoingCallWithUUID(...args: unknown[]): void {
    this.rec('reportConnectedOutgoingCallWithUUID', args);
  }
  setCurrentCallActive(...args: unknown[]): void {
    this.rec('setCurrentCallActive', args);
  }
}

export class FakeVoipPush implements VoipPushModule {
  readonly calls: RecordedCall[] = [];
  readonly listeners = new Map<VoipPushEventName, (args: unknown) => void>();
  addEventListener(type: VoipPushEventName, handler: (args: unknown) => void): void {
    this.listeners.set(type, handler);
  }
  removeEventListener(type: VoipPushEventName): void {
    this.listeners.delete(type);
  }
  emit(type: VoipPushEventName, data: unknown): void {
    const l = this.listeners.get(type);
    if (!l) throw new Error(`no listener for ${type}`);
    l(data);
  }
  registerVoipToken(): void {
    this.calls.push({ method: 'registerVoipToken', args: [] });
  }
  onVoipNotificationCompleted(uuid: string): void {
    this.calls.push({ method: 'onVoipNotificationCompleted', args: [uuid] });
  }
}

/** One step of a recorded sequence. */
export type Recorded =
  | { readonly from: 'callkeep'; readonly event: CallKeepEventName; readonly data?: unknown }
  | { readonly from: 'voip'; readonly event: VoipPushEventName; readonly data: unknown };

export function replay(steps: readonly Recorded[], callKeep: FakeCallKeep, voip?: FakeVoipPush): void {
  for (const s of steps) {
    if (s.from === 'callkeep') callKeep.emit(s.event, s.data);
    else voip!.emit(s.event, s.data);
  }
}
