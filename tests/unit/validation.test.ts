// Rules several parts of the playground apply, each written once: a
// container's hostname (run --hostname, the gate, /etc/hosts) and a content
// digest (references, manifests, configs, the store).
import { describe, expect, it } from "vitest";
import { hostnameProblem } from "../../server/common/validation.ts";
import { isDigest } from "../../server/engine/image/digest.ts";
import { parseImageConfig } from "../../server/engine/image/image-config.ts";
import { parseReference } from "../../server/engine/image/reference.ts";
import { hostsFile } from "../../server/engine/network/dns.ts";

describe("a container's hostname", () => {
  it("is DNS labels joined by dots, at most 63 characters", () => {
    for (const ok of ["lab", "box.example", "a-b.c1", "0123456789ab", "x".repeat(63), `${"a".repeat(31)}.${"b".repeat(31)}`]) {
      expect(hostnameProblem(ok), ok).toBeUndefined();
    }
  });

  it("refuses what could add a line or a name to /etc/hosts, or that sethostname would not take", () => {
    for (const bad of ["", "-lab", "lab-", "a..b", ".lab", "lab.", "two words", "evil\n1.2.3.4 bank", "under_score", "x".repeat(64), "a.-b"]) {
      expect(hostnameProblem(bad), JSON.stringify(bad)).toMatch(/^invalid hostname/);
    }
  });

  it("is the same rule for /etc/hosts as for run --hostname", () => {
    expect(() => hostsFile("lab-", "172.23.0.2")).toThrow(hostnameProblem("lab-"));
    expect(hostsFile("box.example", "172.23.0.2")).toContain("172.23.0.2\tbox.example");
  });
});

describe("a content digest", () => {
  const hex = "a".repeat(64);

  it("is sha256 and 64 lower-case hex digits", () => {
    expect(isDigest(`sha256:${hex}`)).toBe(true);
    for (const bad of [`sha256:${hex.toUpperCase()}`, `sha256:${hex}0`, `sha512:${hex}`, hex, `sha256:${hex}\n`, 42, undefined]) {
      expect(isDigest(bad), String(bad)).toBe(false);
    }
  });

  it("is the rule the reference parser and the config reader apply", () => {
    expect(parseReference(`alpine@sha256:${hex}`).digest).toBe(`sha256:${hex}`);
    expect(() => parseReference(`alpine@sha256:${hex.slice(1)}`)).toThrow(/64 lower-case hex digits/);
    const config = (diffId: string) => Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [diffId] } }));
    expect(parseImageConfig(config(`sha256:${hex}`), 1).diffIds).toEqual([`sha256:${hex}`]);
    expect(() => parseImageConfig(config(`sha256:${hex.toUpperCase()}`), 1)).toThrow(/not a sha256 digest/);
  });
});
