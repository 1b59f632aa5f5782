"use client";
// The tabs above a student's terminal when they have (or may have) more than
// one container: one tab per instance, the open one marked, and "+ instance"
// while there is room for another. Each tab is a page of its own (?instance=N)
// with its own connection; switching reattaches to that instance's shell.
import type { InstanceInfo } from "../../server/common/protocol.ts";

interface Props {
  instances: InstanceInfo[];
  current: number;
  max: number;
  /** A topology fixes the set: no "+ instance". */
  fixed: boolean;
  onSelect(instance: number): void;
}

export function InstanceTabs({ instances, current, max, fixed, onSelect }: Props) {
  const taken = new Set(instances.map((i) => i.instance));
  // The first is the session's own: "+ instance" adds the second or later.
  let next = 2;
  while (taken.has(next)) next++;
  return (
    <nav className="instance-tabs" aria-label="Your instances" data-testid="instance-tabs">
      {instances.map((i) => (
        <button
          key={i.instance}
          className={i.instance === current ? "tab current" : "tab"}
          aria-current={i.instance === current ? "page" : undefined}
          title={i.lanIp ? `${i.name}: ${i.lanIp} on your private network` : i.name}
          onClick={() => onSelect(i.instance)}
          data-testid={`instance-tab-${i.instance}`}
        >
          {i.name}
          {i.state === "starting" && <span className="muted"> …</span>}
        </button>
      ))}
      {!fixed && next <= max && (
        <button className="tab add" onClick={() => onSelect(next)} title="Another container, on a private network with your others" data-testid="instance-add">
          + instance
        </button>
      )}
    </nav>
  );
}
