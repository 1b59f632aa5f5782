// Runs once before the integration tests: starts two real registries on
// loopback and pushes the standard test images into them (see
// tests/fixtures/images.ts). Tests read the addresses with vitest's
// `inject("registry")` etc.; the returned teardown stops both registries.
import type { TestProject } from "vitest/node";
import { pushTestImages } from "../fixtures/images.ts";
import { startRegistry, type TestRegistry } from "../fixtures/registry.ts";
import type { Credentials } from "../fixtures/token-server.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** host:port of an anonymous plain-HTTP registry holding every standard test image. */
    registry: string;
    /** Its filesystem storage root (docker/registry/v2/…), for tests that tamper with blobs. */
    registryStorage: string;
    /** Its access log: count blob downloads with `blobGets(inject("registryLog"), repo)`. */
    registryLog: string;
    /** host:port of a registry that wants Bearer tokens; holds library/busybox:latest. */
    tokenRegistry: string;
    /** The only credentials its token server accepts. */
    tokenCredentials: Credentials;
  }
}

export default async function setup(project: TestProject) {
  const starting = await Promise.allSettled([startRegistry(), startRegistry({ auth: "token" })]);
  const started = starting.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const stopAll = async () => {
    await Promise.allSettled(started.map((r) => r.stop()));
  };
  try {
    for (const s of starting) if (s.status === "rejected") throw s.reason;
    const [registry, tokenRegistry] = started as [TestRegistry, TestRegistry];
    const [images, tokenImages] = await Promise.all([
      pushTestImages(registry.address),
      pushTestImages(tokenRegistry.address, { credentials: tokenRegistry.credentials, only: ["busybox"] }),
    ]);
    // The layouts are only needed for pushing.
    await Promise.all([images.cleanup(), tokenImages.cleanup()]);

    project.provide("registry", registry.address);
    project.provide("registryStorage", registry.storageDir);
    project.provide("registryLog", registry.logFile);
    project.provide("tokenRegistry", tokenRegistry.address);
    project.provide("tokenCredentials", tokenRegistry.credentials!);
  } catch (error) {
    // A registry that started must not outlive a failed setup.
    await stopAll();
    throw error;
  }
  return stopAll;
}
