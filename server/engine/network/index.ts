// The containers' network, as the container lifecycle uses it:
//   once per host   ensureBridge()  → a bridge on a private /16, forwarding and NAT to the uplink
//   per container   allocateAddress() → attachContainer() … detachContainer()
//                   resolvConf(), hostsFile() for its /etc files
//   cleanup         teardownBridge(), listLeftovers(), removeLeftovers()
// Stateless: the caller keeps the record (the subnet, the leased addresses).
export type { BridgeNetwork } from "./types.ts";
export { DEFAULT_BRIDGE } from "./types.ts";
export { pickSubnet, allocateAddress, type UsedByHost } from "./subnet.ts";
export { hostRoutesAndAddresses, findUplink } from "./routes.ts";
export { ensureBridge, teardownBridge, removeBridge, bridgePorts, type BridgeOptions } from "./bridge.ts";
export { attachContainer, detachContainer, vethNames, type Attachment } from "./veth.ts";
export { detectNatBackend, iptablesBackend, nftBackend, type NatBackend, type NatRule } from "./nat.ts";
export { listLeftovers, removeLeftovers, type NetworkLeftovers } from "./leftovers.ts";
export { resolvConf, readHostResolvConf, hostsFile } from "./dns.ts";
