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
// Walls: the bridge is the containers' gateway, so it has an address on the
// host, and any service listening on all addresses (the playground's own web
// server on 0.0.0.0:3000, sshd) would answer a container knocking on that
// address. Containers need nothing from the host itself, only forwarding out
// of it (their DNS servers are the host's upstream ones, never the host), so
// everything arriving from the bridge for the host is dropped (the INPUT
// rule). And a container could hand the host a packet for another container
// (raw sockets are among a container's default capabilities), which the host
// would route back into the bridge; that is dropped too (the FORWARD rule from
// the bridge to the bridge). Between the bridge's ports, the bridge itself
// keeps containers apart (veth.ts: isolated ports).
//
// Forwarding: with net.ipv4.ip_forward=1 the host routes between the bridge
// and the uplink, but a firewall whose FORWARD policy is DROP (Docker sets
// that, for one) would still drop it; then, and only then, accept rules for the
// subnet are added, and removed with the bridge.
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
  /** Masquerade the subnet out of the uplink, wall the containers off from the host and each other, and accept their forwarding where policy drops; adds only what is missing. */
  ensure(host: Host, net: BridgeNetwork): Promise<void>;
  /** Every rule (or nft table) of the playground. */
  list(host: Host): Promise<NatRule[]>;
  remove(host: Host, rules: NatRule[]): Promise<void>;
}

export const COMMENT_PREFIX = "playground";

/** Whether a rule's comment is one of ours ("playground:<bridge>"), not merely alike ("playground-ci"). */
export function isOurComment(comment: string | undefined): comment is string {
  return comment?.startsWith(`${COMMENT_PREFIX}:`) ?? false;
}

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
    /** Adds the rule unless it is there (or, with `toTop`, moves it on top); returns whether it added it. */
    const ensureRule = async (table: string, chain: string, add: "-A" | "-I", spec: string[], title: string, toTop = false) => {
      const check = await host.exec(
        `check whether the rule is already there (${chain})`,
        ["iptables", "-w", "-t", table, "-C", chain, ...spec],
        { allowFailure: true },
      );
      if (check.code === 0 && !toTop) return false;
      if (check.code === 0) {
        await deleteIgnoringGone(host, "take the rule out, to put it back on top of the chain", [
          "iptables", "-w", "-t", table, "-D", chain, ...spec,
        ], /does a matching rule exist|No chain/);
      }
      await host.exec(title, ["iptables", "-w", "-t", table, add, chain, ...spec]);
      return true;
    };
    await ensureRule(
      "nat",
      "POSTROUTING",
      "-A",
      ["-s", net.subnet, "-o", net.uplink, ...comment, "-j", "MASQUERADE"],
      `NAT: send the containers' traffic out of ${net.uplink} under the host's own address (masquerade)`,
    );
    let acceptsAdded = false;
    const forward = await host.exec("read the firewall's forwarding policy", ["iptables", "-w", "-S", "FORWARD"]);
    if (/^-P FORWARD DROP/m.test(forward.stdout)) {
      acceptsAdded = await ensureRule(
        "filter",
        "FORWARD",
        "-I",
        ["-d", net.subnet, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", ...comment, "-j", "ACCEPT"],
        "let replies back in to the containers (the host's forwarding policy is DROP)",
      );
      acceptsAdded = (await ensureRule(
        "filter",
        "FORWARD",
        "-I",
        ["-s", net.subnet, ...comment, "-j", "ACCEPT"],
        "let the containers' traffic through (the host's forwarding policy is DROP)",
      )) || acceptsAdded;
    }
    // The walls go on top of their chains, ahead of any accept of the host's
    // or ours: iptables takes the first rule that matches. Accepts inserted
    // just now sit above an older wall, so it moves back on top.
    await ensureRule(
      "filter",
      "FORWARD",
      "-I",
      ["-i", net.bridge, "-o", net.bridge, ...comment, "-j", "DROP"],
      `firewall: drop what one container sends another through the host (in from ${net.bridge}, back out to ${net.bridge})`,
      acceptsAdded,
    );
    await ensureRule(
      "filter",
      "INPUT",
      "-I",
      ["-i", net.bridge, ...comment, "-j", "DROP"],
      `firewall: drop everything the containers send to the host itself (its web server, sshd, …): they only get forwarded out`,
    );
  },

  async list(host) {
    const rules: NatRule[] = [];
    for (const [table, chain] of [["nat", "POSTROUTING"], ["filter", "FORWARD"], ["filter", "INPUT"]]) {
      const out = await host.exec(`list the ${chain} firewall rules`, ["iptables", "-w", "-t", table, "-S", chain]);
      for (const line of out.stdout.split("\n")) {
        const words = splitRuleLine(line);
        const at = words.indexOf("--comment");
        const comment = at >= 0 ? words[at + 1] : undefined;
        if (words[0] !== "-A" || !isOurComment(comment)) continue;
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

/** The nft backend keeps its masquerade rule and its walls in a table of its own. */
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
    const addRule = async (chain: string, body: string, title: string) => {
      if (ours.some((r) => r.family === NFT_TABLE[0] && r.table === NFT_TABLE[1] && r.chain === chain && r.body.startsWith(body))) return;
      await host.exec(title, ["nft", "add", "rule", ...NFT_TABLE, chain, ...body.split(" "), "comment", `"${comment}"`]);
    };
    await addRule(
      "postrouting",
      `ip saddr ${net.subnet} oifname "${net.uplink}" masquerade`,
      `NAT: send the containers' traffic out of ${net.uplink} under the host's own address (masquerade)`,
    );
    // The walls. A drop in any base chain is final, whatever other tables
    // accept, so chains of our own are enough here.
    await host.exec("make its forwarding filter chain", [
      "nft", "add", "chain", ...NFT_TABLE, "forward", "{ type filter hook forward priority filter; policy accept; }",
    ]);
    await addRule(
      "forward",
      `iifname "${net.bridge}" oifname "${net.bridge}" drop`,
      `firewall: drop what one container sends another through the host (in from ${net.bridge}, back out to ${net.bridge})`,
    );
    await host.exec("make its input filter chain, run on packets for the host itself", [
      "nft", "add", "chain", ...NFT_TABLE, "input", "{ type filter hook input priority filter; policy accept; }",
    ]);
    await addRule(
      "input",
      `iifname "${net.bridge}" drop`,
      "firewall: drop everything the containers send to the host itself (its web server, sshd, …): they only get forwarded out",
    );
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
      if (!isOurComment(comment)) return [];
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
