// The containers' shared network, as the container lifecycle records it.

/** One bridge on the host, its private subnet, and where its traffic leaves. */
export interface BridgeNetwork {
  /** The bridge interface: a virtual switch every container's veth plugs into ("pg0"). */
  bridge: string;
  /** The containers' private network, e.g. "172.23.0.0/16". */
  subnet: string;
  /** The bridge's own address: every container's default route ("172.23.0.1"). */
  gateway: string;
}

/** The default bridge name; tests pass their own so that runs never fight over one bridge. */
export const DEFAULT_BRIDGE = "pg0";

/** Linux interface names: at most 15 bytes; we also keep to characters that need no quoting. */
export function checkInterfaceName(name: string, what = "interface"): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,14}$/.test(name)) {
    throw new Error(`invalid ${what} name "${name}": at most 15 letters, digits, "_", ".", "@" or "-"`);
  }
  return name;
}
