// The containers' network, as the container lifecycle uses it:
//   once per host   ensureBridge()  → a bridge on a private /16, forwarding, the firewall (firewall.ts)
//   per container   allocateAddress() → attachContainer() + allowPort() … forgetPort() + detachContainer()
//                   resolvConf(), hostsFile() for its /etc files
//   cleanup         teardownBridge(), listLeftovers(), removeLeftovers()
// Stateless: the caller keeps the record (the subnet, the leased addresses).
export type { BridgeNetwork } from "./types.ts";
export { DEFAULT_BRIDGE } from "./types.ts";
export { pickSubnet, allocateAddress, type UsedByHost } from "./subnet.ts";
export { hostRoutesAndAddresses } from "./routes.ts";
export { ensureBridge, teardownBridge, removeBridge, bridgePorts, type BridgeOptions } from "./bridge.ts";
export { attachContainer, detachContainer, vethNames, macOf, type Attachment } from "./veth.ts";
export { applyFirewall, removeFirewall, listFirewall, allowPort, forgetPort, firewallRuleset, type FirewallPlan } from "./firewall.ts";
export { REFUSED_RANGES, attachedNetworks, parseAllowed, type EgressPolicy, type AllowedDestination } from "./egress.ts";
export { listLeftovers, removeLeftovers, type NetworkLeftovers } from "./leftovers.ts";
export { resolvConf, readHostResolvConf, containerResolvers, hostsFile } from "./dns.ts";
