// When a container's main process exits, its root file system is unmounted
// (the overlay, then the writable layer's ext4, whose loop device the kernel
// then detaches), but its files stay: without --rm a container's writable
// layer is kept until `playground rm`, as docker keeps a stopped container's.
// removeRootfs() (rootfs.ts) is the full removal, files included.
import path from "node:path";
import { HostError, type Host } from "../host.ts";
import { mountPoints } from "./mountinfo.ts";
import { listRootfsLoopDevices, rootfsPaths } from "./rootfs.ts";

export async function unmountRootfs(host: Host, containerDir: string): Promise<void> {
  const p = rootfsPaths(containerDir);
  for (const target of [p.merged, p.rw]) {
    if (!(await mountPoints()).includes(target)) continue;
    const result = await host.exec(`Unmount ${path.basename(target)}`, ["umount", target], { allowFailure: true });
    // Another process (a `playground rm` racing the container's own cleanup)
    // may have unmounted it in between: only a mount still there is a failure.
    if (result.code !== 0 && (await mountPoints()).includes(target)) {
      throw new HostError({ title: `Unmount ${path.basename(target)}`, command: `umount ${target}` }, result);
    }
  }
  for (const loop of (await listRootfsLoopDevices(containerDir)).filter((l) => l.backingFile === p.image)) {
    await host.exec("Detach the loop device", ["losetup", "-d", loop.device], { allowFailure: true });
  }
}
