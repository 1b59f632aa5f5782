// Image references must mean what they mean to Docker: a student who types
// `alpine` or `127.0.0.1:5000/tools/busybox:1.36` gets the same image `docker
// pull` would fetch, and a typo is a one-line error rather than a request to
// some other registry.
import { describe, expect, it } from "vitest";
import { InvalidReferenceError } from "../../server/engine/image/errors.ts";
import { familiarName, formatReference, parseReference } from "../../server/engine/image/reference.ts";

const HEX = "a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";
const DIGEST = `sha256:${HEX}`;

describe("parseReference: names Docker accepts", () => {
  it.each([
    ["alpine", "docker.io", "library/alpine", "latest", undefined],
    ["alpine:3.20", "docker.io", "library/alpine", "3.20", undefined],
    ["user/repo:tag", "docker.io", "user/repo", "tag", undefined],
    ["user/repo", "docker.io", "user/repo", "latest", undefined],
    ["docker.io/alpine", "docker.io", "library/alpine", "latest", undefined],
    ["docker.io/library/alpine:edge", "docker.io", "library/alpine", "edge", undefined],
    ["index.docker.io/library/alpine", "docker.io", "library/alpine", "latest", undefined],
    ["index.docker.io/alpine", "docker.io", "library/alpine", "latest", undefined],
    ["registry-1.docker.io/bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", undefined],
    ["docker.io/library/a/b", "docker.io", "library/a/b", "latest", undefined],
    ["localhost/foo", "localhost", "foo", "latest", undefined],
    ["localhost:5000/foo/bar:tag", "localhost:5000", "foo/bar", "tag", undefined],
    ["127.0.0.1:5000/library/alpine:3.20", "127.0.0.1:5000", "library/alpine", "3.20", undefined],
    ["ghcr.io/owner/project/image:v1.2.3", "ghcr.io", "owner/project/image", "v1.2.3", undefined],
    ["quay.io/prometheus/node-exporter", "quay.io", "prometheus/node-exporter", "latest", undefined],
    ["registry.example.com:443/a", "registry.example.com:443", "a", "latest", undefined],
    ["[::1]:5000/foo:bar", "[::1]:5000", "foo", "bar", undefined],
    ["[2001:db8::1]/foo", "[2001:db8::1]", "foo", "latest", undefined],
    // Upper case can't be a repository name, so Docker reads it as a host.
    ["Registry/repo", "Registry", "repo", "latest", undefined],
    ["sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", undefined],
    ["foo_bar", "docker.io", "library/foo_bar", "latest", undefined],
    ["foo__bar.baz-qux---x", "docker.io", "library/foo__bar.baz-qux---x", "latest", undefined],
    ["alpine:_under", "docker.io", "library/alpine", "_under", undefined],
    [`alpine@${DIGEST}`, "docker.io", "library/alpine", undefined, DIGEST],
    [`alpine:3.20@${DIGEST}`, "docker.io", "library/alpine", "3.20", DIGEST],
    [`localhost:5000/x@${DIGEST}`, "localhost:5000", "x", undefined, DIGEST],
    // Without a "/" there is no host: this is the image "localhost" with tag "5000".
    ["localhost:5000", "docker.io", "library/localhost", "5000", undefined],
  ])("%s", (text, registry, repository, tag, digest) => {
    const ref = parseReference(text);
    expect(ref).toEqual({
      registry,
      repository,
      ...(tag !== undefined && { tag }),
      ...(digest !== undefined && { digest }),
    });
  });

  it("accepts a tag of 128 characters and a name of 255", () => {
    expect(parseReference(`alpine:${"t".repeat(128)}`).tag).toHaveLength(128);
    const repo = "a".repeat(255 - "docker.io/library/".length);
    expect(parseReference(repo).repository).toBe(`library/${repo}`);
  });
});

describe("parseReference: names Docker refuses", () => {
  it.each([
    ["", /empty name/],
    [" alpine", /whitespace/],
    ["alpine latest", /whitespace/],
    ["alpine\n", /whitespace|control/],
    ["Alpine", /must be lower-case/],
    ["docker.io/Library/alpine", /must be lower-case/],
    ["localhost:5000/Foo", /must be lower-case/],
    ["alpine:", /invalid tag ""/],
    [":latest", /empty repository/],
    ["alpine:-dash", /invalid tag "-dash"/],
    ["alpine:.dot", /invalid tag/],
    ["alpine:ta/g", /./],
    [`alpine:${"t".repeat(129)}`, /invalid tag/],
    ["alpine:tag:more", /./],
    ["alpine@", /digest/],
    ["alpine@sha256:abc", /64 lower-case hex/],
    [`alpine@sha256:${HEX.toUpperCase()}`, /64 lower-case hex/],
    [`alpine@sha512:${HEX}${HEX}`, /unsupported digest algorithm "sha512"/],
    [`alpine@${DIGEST}@${DIGEST}`, /more than one "@"/],
    ["a//b", /empty path component/],
    ["user/", /empty path component/],
    ["/alpine", /./],
    ["-alpine", /invalid repository name component "-alpine"/],
    ["alpine-", /invalid repository name component/],
    ["foo___bar", /invalid repository name component/],
    ["foo..bar", /invalid repository name component/],
    ["localhost:5000/", /empty repository/],
    ["-host.com/x", /invalid registry host/],
    ["host.com:port/x", /invalid registry host/],
    ["foo_bar.com:8080/x", /invalid registry host "foo_bar.com:8080"/],
    ["ex ample.com/x", /whitespace/],
    [HEX, /image id/],
    [`docker.io/library/${"a".repeat(240)}`, /longer than 255/],
  ])("%j", (text, why) => {
    let error: unknown;
    try {
      parseReference(text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidReferenceError);
    const message = (error as Error).message;
    expect(message).toMatch(why);
    expect(message).toMatch(/^invalid image reference "/);
    expect(message).not.toContain("\n");
  });
});

describe("formatReference and familiarName", () => {
  it.each([
    ["alpine", "docker.io/library/alpine:latest", "alpine:latest"],
    ["index.docker.io/library/alpine:3.20", "docker.io/library/alpine:3.20", "alpine:3.20"],
    ["user/repo:tag", "docker.io/user/repo:tag", "user/repo:tag"],
    ["docker.io/library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"],
    ["localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"],
    ["127.0.0.1:5000/library/alpine:3.20", "127.0.0.1:5000/library/alpine:3.20", "127.0.0.1:5000/library/alpine:3.20"],
    [`alpine@${DIGEST}`, `docker.io/library/alpine@${DIGEST}`, `alpine@${DIGEST}`],
    [`alpine:3.20@${DIGEST}`, `docker.io/library/alpine:3.20@${DIGEST}`, `alpine:3.20@${DIGEST}`],
  ])("%s", (text, canonical, familiar) => {
    const ref = parseReference(text);
    expect(formatReference(ref)).toBe(canonical);
    expect(familiarName(ref)).toBe(familiar);
    // The canonical form reads back as the same reference.
    expect(parseReference(canonical)).toEqual(ref);
  });
});
