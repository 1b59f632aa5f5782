// A coloured dot and a word: is this page connected to the server right now?
export function ConnectionDot({ connected }: { connected: boolean }) {
  return (
    <span className={`connection ${connected ? "online" : "offline"}`} data-testid="connection">
      <span className="dot" aria-hidden />
      {connected ? "connected" : "reconnecting…"}
    </span>
  );
}
