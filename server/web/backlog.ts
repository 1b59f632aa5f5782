// How far a socket's network lags behind: the packets engine.io holds for it
// because the transport has not taken the previous ones yet (a WebSocket
// whose send has not completed, a long-poll not yet collected). A reader that
// does not read makes this grow; one that keeps up keeps it near zero.
import type { Socket } from "socket.io";

export function queuedPackets(socket: Pick<Socket, "conn">): number {
  // writeBuffer is engine.io's queue; its typings mark it private, but it is
  // the one honest measure of a slow network reader.
  return (socket.conn as unknown as { writeBuffer: unknown[] }).writeBuffer.length;
}
