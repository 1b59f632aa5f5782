// A host whose firewall drops forwarded traffic by default (Docker sets the
// iptables FORWARD policy to DROP, and so may a hardened host): there, the
// playground's own accept rules cannot help, since a packet is dropped if any
// table drops it. Then, and only then, two accept rules for the containers'
// subnet are inserted into iptables' FORWARD chain, marked with the comment
// "playground:<bridge>", and removed with the bridge. Nothing else of the
// host's iptables is touched, and a host without iptables needs none of this.
import fs from "node:fs/promises";
import path from "node:path";
import { commandLine, HostError, type Host } from "../host.ts";

export const COMMENT_PREFIX = "playground";

export function ruleComment(bridge: string): string {
  return `${COMMENT_PREFIX}:${bridge}`;
}

/** A rule of ours in iptables' FORWARD chain. */
export interface ForwardRule {
  /** The rule as a student would add it by hand. */
  text: string;
  comment: string;
  deleteArgv: string[];
}

async function hasIptables(): Promise<boolean> {
  for (const dir of ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) {
    if (await fs.access(path.join(dir, "iptables")).then(() => true, () => false)) return true;
  }
  return false;
}

/** iptables -S output quotes arguments with spaces; split a line back into arguments. */
export function splitRuleLine(line: string): string[] {
  const words: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]);
  return words;
}

/** Adds the accept rules when the host's FORWARD policy drops (and they are not there yet). */
export async function ensureForwardAllowed(host: Host, net: { bridge: string; subnet: string }): Promise<void> {
  if (!(await hasIptables())) return;
  const forward = await host.exec("read the host's iptables forwarding policy", ["iptables", "-w", "-S", "FORWARD"], { allowFailure: true });
  if (forward.code !== 0 || !/^-P FORWARD DROP/m.test(forward.stdout)) return;
  const comment = ["-m", "comment", "--comment", ruleComment(net.bridge)];
  const rules: [string[], string][] = [
    [["-d", net.subnet, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", ...comment, "-j", "ACCEPT"], "let replies back in to the containers (the host's forwarding policy is DROP)"],
    [["-s", net.subnet, ...comment, "-j", "ACCEPT"], "let the containers' traffic through (the host's forwarding policy is DROP; the playground's own firewall still filters it)"],
  ];
  for (const [spec, title] of rules) {
    const present = await host.exec("check whether the rule is there", ["iptables", "-w", "-C", "FORWARD", ...spec], { allowFailure: true });
    if (present.code !== 0) await host.exec(title, ["iptables", "-w", "-I", "FORWARD", ...spec]);
  }
}

/** Our accept rules in iptables' FORWARD chain, any bridge's. */
export async function listForwardRules(host: Host): Promise<ForwardRule[]> {
  if (!(await hasIptables())) return [];
  const out = await host.exec("list the FORWARD firewall rules", ["iptables", "-w", "-S", "FORWARD"], { allowFailure: true });
  const rules: ForwardRule[] = [];
  for (const line of out.stdout.split("\n")) {
    const words = splitRuleLine(line);
    const at = words.indexOf("--comment");
    const comment = at >= 0 ? words[at + 1] : undefined;
    if (words[0] !== "-A" || !comment?.startsWith(`${COMMENT_PREFIX}:`)) continue;
    rules.push({ text: `iptables ${line.trim()}`, comment, deleteArgv: ["iptables", "-w", "-D", ...words.slice(1)] });
  }
  return rules;
}

export async function removeForwardRules(host: Host, rules: ForwardRule[]): Promise<void> {
  for (const rule of rules) {
    const title = `remove the playground's forwarding rule (${rule.comment})`;
    const result = await host.exec(title, rule.deleteArgv, { allowFailure: true });
    // Another cleanup may have removed it meanwhile.
    if (result.code !== 0 && !/does a matching rule exist|No chain/.test(result.stderr)) throw new HostError({ title, command: commandLine(rule.deleteArgv) }, result);
  }
}
