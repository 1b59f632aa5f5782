"use client";
// The ports the student's container listens on, each a link to its preview
// (opened in a new tab, on the playground's preview origin). A server bound
// to 127.0.0.1 only is listed but cannot be reached from outside: the hint
// says how to fix that.
import type { PortInfo } from "../../server/common/protocol.ts";

interface Props {
  sessionId: string;
  ports: PortInfo[];
  onRefresh(): void;
}

export function PortsList({ sessionId, ports, onRefresh }: Props) {
  return (
    <div className="ports" data-testid="ports">
      <span className="label">ports</span>
      {ports.length === 0 && <span className="muted">none listening</span>}
      {ports.map((p) =>
        p.reachable ? (
          <a key={p.port} href={`/preview/${sessionId}/${p.port}/`} target="_blank" rel="noopener noreferrer" title={`Open what listens on port ${p.port} (${p.addresses.join(", ")})`}>
            {p.port}
          </a>
        ) : (
          <span key={p.port} className="muted" title={`Port ${p.port} listens on ${p.addresses.join(", ")} only: listen on 0.0.0.0 to preview it`}>
            {p.port} (local only)
          </span>
        ),
      )}
      <button className="link" onClick={onRefresh} aria-label="Refresh the ports" title="Look again">
        ↻
      </button>
    </div>
  );
}
