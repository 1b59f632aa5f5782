// NAT for the containers' network: their private addresses mean nothing
// outside this host, so on the way out the kernel rewrites the source of their
// packets to the uplink's own address ("masquerade") and rewrites the replies
// back. Two ways to ask the kernel for that: iptables (most hosts; here it is
// iptables-nft, the nftables kernel engine behind the classic command) and
// nft itself, for hosts that have only nftables.
//
// Every rule carries the comment "playground:<bridge>", and only rules with
// such a comment are ever listed or deleted: the host's own firewall is
// never touched.
//
// Forwarding: with net.ipv4.ip_forward=1 the host routes between the bridge
// and the uplink, but a firewall whose FORWARD policy is DROP (Docker sets
// that, for one) would still drop it; then, and only then, accept rules for the
// subnet are added, and removed with the bridge. Bridged traffic between two
// containers also passes FORWARD here (net.bridge.bridge-nf-call-iptables=1),
// and the subnet's accept rule covers it.
import fs from "node:fs/promises";
import path from "node:path";
import { commandLine, HostError, type Host } from "../host.ts";
import type { BridgeNetwork } from "./types.ts";

export interface NatRule {
  /** The rule as a student would add it by hand. */
  text: string;
  /** Which bridge it serves: "playground:<bridge>" (an empty nft table has "playground"). */
  comment: string;
  /** The command that deletes it. */
  deleteArgv: string[];
}

export interface NatBackend {
  readonly name: "iptables" | "nft";
  /** Masquerade the subnet out of the uplink, and accept its forwarding where policy drops; adds only what is missing. */
  ensure(host: Host, net: BridgeNetwork): Promise<void>;
  /** Every rule (or nft table) of the playground. */
  list(host: Host): Promise<NatRule[]>;
  remove(host: Host, rules: NatRule[]): Promise<void>;
}

export const COMMENT_PREFIX = "playground";

export function ruleComment(bridge: string): string {
  return `${COMMENT_PREFIX}:${bridge}`;
}

/** iptables -S output quotes arguments with spaces; split a line back into arguments. */
export function splitRuleLine(line: string): string[] {
  const words: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]);
  return words;
}

/** Deleting a rule that another cleanup already deleted is fine; anything else is an error. */
async function deleteIgnoringGone(host: Host, title: string, argv: string[], gone: RegExp): Promise<void> {
  const result = await host.exec(title, argv, { allowFailure: true });
  if (result.code !== 0 && !gone.test(result.stderr)) {
    throw new HostError({ title, command: commandLine(argv) }, result);
  }
}

export const iptablesBackend: NatBackend = {
  name: "iptables",

  async ensure(host, net) {
    const comment = ["-m", "comment", "--comment", ruleComment(net.bridge)];
    // -w: wait for the xtables lock rather than fail when another tool (Docker, ufw) holds it.
    const ensureRule = async (table: string, chain: string, add: "-A" | "-I", spec: string[], title: string) => {
      const check = await host.exec(
        `check whether the rule is already there (${chain})`,
        ["iptables", "-w", "-t", table, "-C", chain, ...spec],
        { allowFailure: true },
      );
      if (check.code !== 0) await host.exec(title, ["iptables", "-w", "-t", table, add, chain, ...spec]);
    };
    await ensureRule(
      "nat",
      "POSTROUTING",
      "-A",
      ["-s", net.subnet, "-o", net.uplink, ...comment, "-j", "MASQUERADE"],
      `NAT: send the containers' traffic out of ${net.uplink} under the host's own address (masquerade)`,
    );
    const forward = await host.exec("read the firewall's forwarding policy", ["iptables", "-w", "-S", "FORWARD"]);
    if (/^-P FORWARD DROP/m.test(forward.stdout)) {
      await ensureRule(
        "filter",
        "FORWARD",
        "-I",
        ["-d", net.subnet, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", ...comment, "-j", "ACCEPT"],
        "let replies back in to the containers (the host's forwarding policy is DROP)",
      );
      await ensureRule(
        "filter",
        "FORWARD",
        "-I",
        ["-s", net.subnet, ...comment, "-j", "ACCEPT"],
        "let the containers' traffic through (the host's forwarding policy is DROP)",
      );
    }
  },

  async list(host) {
    const rules: NatRule[] = [];
    for (const [table, chain] of [["nat", "POSTROUTING"], ["filter", "FORWARD"]]) {
      const out = await host.exec(`list the ${chain} firewall rules`, ["iptables", "-w", "-t", table, "-S", chain]);
      for (const line of out.stdout.split("\n")) {
        const words = splitRuleLine(line);
        const at = words.indexOf("--comment");
        const comment = at >= 0 ? words[at + 1] : undefined;
        if (words[0] !== "-A" || !comment?.startsWith(COMMENT_PREFIX)) continue;
        rules.push({
          text: `iptables -t ${table} ${line.trim()}`,
          comment,
          deleteArgv: ["iptables", "-w", "-t", table, "-D", ...words.slice(1)],
        });
      }
    }
    return rules;
  },

  async remove(host, rules) {
    for (const rule of rules) {
      await deleteIgnoringGone(host, `remove the playground's firewall rule (${rule.comment})`, rule.deleteArgv, /does a matching rule exist|No chain/);
    }
  },
};

/** The nft backend keeps its masquerade rule in a table of its own. */
const NFT_TABLE = ["ip", "playground"] as const;

/** One rule of `nft -a list ruleset`, with where it sits. */
interface NftRule {
  family: string;
  table: string;
  chain: string;
  body: string;
  handle: string;
}

interface NftRuleset {
  rules: NftRule[];
  /** Base chains that drop forwarded traffic by policy: family, table, chain. */
  droppingForward: [string, string, string][];
  hasOurTable: boolean;
}

async function readNftRuleset(host: Host): Promise<NftRuleset> {
  const out = await host.exec("list the nftables ruleset", ["nft", "-a", "list", "ruleset"]);
  const ruleset: NftRuleset = { rules: [], droppingForward: [], hasOurTable: false };
  let family = "";
  let table = "";
  let chain = "";
  for (const raw of out.stdout.split("\n")) {
    const line = raw.trim();
    let m: RegExpMatchArray | null;
    if ((m = line.match(/^table (\S+) (\S+) \{/))) {
      [family, table, chain] = [m[1], m[2], ""];
      if (family === NFT_TABLE[0] && table === NFT_TABLE[1]) ruleset.hasOurTable = true;
    } else if ((m = line.match(/^chain (\S+) \{/))) {
      chain = m[1];
    } else if (/^type filter hook forward\b.*\bpolicy drop;/.test(line)) {
      if (family === "ip" || family === "inet") ruleset.droppingForward.push([family, table, chain]);
    } else if ((m = line.match(/^(.*\S)\s+# handle (\d+)$/)) && chain && !/^(type|policy) /.test(line)) {
      ruleset.rules.push({ family, table, chain, body: m[1], handle: m[2] });
    }
  }
  return ruleset;
}

function nftComment(rule: NftRule): string | undefined {
  return rule.body.match(/comment "([^"]*)"/)?.[1];
}

export const nftBackend: NatBackend = {
  name: "nft",

  async ensure(host, net) {
    const comment = ruleComment(net.bridge);
    const ruleset = await readNftRuleset(host);
    const ours = ruleset.rules.filter((r) => nftComment(r) === comment);
    if (!ruleset.hasOurTable) {
      await host.exec("make the playground's own nftables table", ["nft", "add", "table", ...NFT_TABLE]);
    }
    await host.exec("make its NAT chain, run as packets leave the host", [
      "nft", "add", "chain", ...NFT_TABLE, "postrouting",
      "{ type nat hook postrouting priority srcnat; policy accept; }",
    ]);
    const masquerade = `ip saddr ${net.subnet} oifname "${net.uplink}" masquerade`;
    if (!ours.some((r) => r.chain === "postrouting" && r.body.startsWith(masquerade))) {
      await host.exec(
        `NAT: send the containers' traffic out of ${net.uplink} under the host's own address (masquerade)`,
        ["nft", "add", "rule", ...NFT_TABLE, "postrouting", ...masquerade.split(" "), "comment", `"${comment}"`],
      );
    }
    // nftables runs every base chain on the forward hook, and a drop in any of
    // them is final: an accept in our own table would not help, so accept
    // rules go at the top of each chain that drops by policy.
    for (const [family, table, chain] of ruleset.droppingForward) {
      const present = (body: string) =>
        ours.some((r) => r.family === family && r.table === table && r.chain === chain && r.body.startsWith(body));
      const accepts: [string, string][] = [
        [`ip daddr ${net.subnet} ct state established,related accept`, "let replies back in to the containers"],
        [`ip saddr ${net.subnet} accept`, "let the containers' traffic through"],
      ];
      for (const [body, title] of accepts) {
        if (present(body)) continue;
        await host.exec(`${title} (${family} ${table} ${chain} drops by policy)`, [
          "nft", "insert", "rule", family, table, chain, ...body.split(" "), "comment", `"${comment}"`,
        ]);
      }
    }
  },

  async list(host) {
    const ruleset = await readNftRuleset(host);
    const rules: NatRule[] = ruleset.rules.flatMap((r) => {
      const comment = nftComment(r);
      if (!comment?.startsWith(COMMENT_PREFIX)) return [];
      return [{
        text: `nft add rule ${r.family} ${r.table} ${r.chain} ${r.body}`,
        comment,
        deleteArgv: ["nft", "delete", "rule", r.family, r.table, r.chain, "handle", r.handle],
      }];
    });
    const ourTableEmpty = !ruleset.rules.some((r) => r.family === NFT_TABLE[0] && r.table === NFT_TABLE[1]);
    if (ruleset.hasOurTable && ourTableEmpty) {
      rules.push({ text: `nft add table ${NFT_TABLE.join(" ")}`, comment: COMMENT_PREFIX, deleteArgv: ["nft", "delete", "table", ...NFT_TABLE] });
    }
    return rules;
  },

  async remove(host, rules) {
    for (const rule of rules) {
      await deleteIgnoringGone(host, `remove the playground's nftables rule (${rule.comment})`, rule.deleteArgv, /No such file or directory/);
    }
    // Our table holds nothing but our rules: once none is left, it goes too.
    const ruleset = await readNftRuleset(host);
    const left = ruleset.rules.some((r) => r.family === NFT_TABLE[0] && r.table === NFT_TABLE[1]);
    if (ruleset.hasOurTable && !left) {
      await deleteIgnoringGone(host, "remove the playground's empty nftables table", ["nft", "delete", "table", ...NFT_TABLE], /No such file or directory/);
    }
  },
};

async function onPath(command: string): Promise<boolean> {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin"].filter(Boolean);
  for (const dir of dirs) {
    try {
      await fs.access(path.join(dir, command), fs.constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** iptables where it is installed (it may drive nftables underneath), else nft. */
export async function detectNatBackend(has: (command: string) => Promise<boolean> = onPath): Promise<NatBackend> {
  if (await has("iptables")) return iptablesBackend;
  if (await has("nft")) return nftBackend;
  throw new Error("neither iptables nor nft is installed, so containers cannot reach the network: apt-get install iptables");
}
