export { runFleet, fetchTimelines, parseServer, waitForSipServer, hiResClock, FLEET_DEFAULTS, type FleetOptions, type FleetReport, type FleetCallRecord, type AnswerMix, type Behaviour } from './fleet.js';
export { formatFleetReport } from './report.js';
export { UdpImpairmentRelay, type ImpairmentOptions, type RelayStats } from './relay.js';
export { startFleetEmulators, type FleetEmulators, type FleetEmulatorOptions } from './emulators.js';
export { percentiles, serverLatencies, type Percentiles, type ServerLatencies, type TimelineLike } from './stats.js';
export { registerSimCommand } from './command.js';
