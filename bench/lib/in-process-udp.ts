/**
 * A UDP transport with no socket, for the in-process benchmarks: what pushcall sends goes to
 * `onSend`, and the returned `deliver` hands pushcall a datagram as if it arrived from
 * 127.0.0.1:`fromPort`. Isolates pushcall's own work from the kernel's datagram path.
 */
import type { Flow, SendTarget, Transport, TransactionLayer, TransportEvents } from '@pushcall/sip';

export function attachInProcessUdp(layer: TransactionLayer, localPort: number, onSend: (target: SendTarget, data: Buffer) => void): (data: Buffer, fromPort: number) => void {
  const flowFrom = (port: number): Flow => ({ protocol: 'udp', localAddress: '127.0.0.1', localPort, remoteAddress: '127.0.0.1', remotePort: port });
  // Inbound flows are made once per peer, as a socket's would be reused; a send returns a new one, as UdpTransport does.
  const inbound = new Map<number, Flow>();
  let events!: TransportEvents;
  class InProcessUdp implements Transport {
    readonly protocol = 'udp' as const;
    readonly reliable = false;
    readonly localAddress = '127.0.0.1';
    readonly localPort = localPort;
    async listen() {}
    async send(target: SendTarget, data: Buffer): Promise<Flow> {
      onSend(target, data);
      return flowFrom(target.port);
    }
    hasConnection() {
      return false;
    }
    async close() {}
  }
  layer.addTransport((e) => {
    events = e;
    return new InProcessUdp();
  });
  return (data, fromPort) => {
    let flow = inbound.get(fromPort);
    if (!flow) inbound.set(fromPort, (flow = flowFrom(fromPort)));
    events.onMessage({ data, flow });
  };
}
