// Reading a container's listening ports from the kernel's socket tables
// (/proc/PID/net/tcp and tcp6), as the port preview lists them.
import { describe, expect, it } from "vitest";
import { listeningSockets } from "../../server/engine/network/listening.ts";

const HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

describe("the TCP socket table", () => {
  it("keeps LISTEN sockets only, with their IPv4 address and port", () => {
    const text =
      HEADER +
      "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1677 1 0 100 0 0 10 0\n" +
      "   1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1678 1 0 100 0 0 10 0\n" +
      "   2: 0201A8C0:1F90 0101A8C0:C350 01 00000000:00000000 00:00000000 00000000     0        0 1679 1 0 100 0 0 10 0\n";
    expect(listeningSockets(text)).toEqual([
      { address: "0.0.0.0", port: 8080 },
      { address: "127.0.0.1", port: 8081 },
    ]);
  });

  it("reads IPv6 addresses, compressing zeros and showing IPv4-mapped ones as IPv4", () => {
    const text =
      HEADER +
      "   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 0 0 0 0 0 1\n" +
      "   1: 00000000000000000000000001000000:0051 00000000000000000000000000000000:0000 0A 0 0 0 0 0 1\n" +
      "   2: 0000000000000000FFFF00000100007F:0052 00000000000000000000000000000000:0000 0A 0 0 0 0 0 1\n" +
      "   3: 000080FE00000000FF005002FEB3A1C7:0053 00000000000000000000000000000000:0000 0A 0 0 0 0 0 1\n";
    expect(listeningSockets(text)).toEqual([
      { address: "::", port: 80 },
      { address: "::1", port: 81 },
      { address: "127.0.0.1", port: 82 },
      { address: "fe80::250:ff:c7a1:b3fe", port: 83 },
    ]);
  });

  it("ignores lines it cannot read", () => {
    expect(listeningSockets(HEADER + "garbage\n   0: XYZ:0 0 0A\n\n")).toEqual([]);
  });
});
