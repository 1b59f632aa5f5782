// The WWW-Authenticate header decides how we log in to a registry: which
// token server to ask (realm), for which service and scope. Real registries
// write it in several ways; all of them must parse to the same meaning.
import { describe, expect, it } from "vitest";
import { ImageError } from "../../server/engine/image/errors.ts";
import { parseChallenge } from "../../server/engine/image/auth.ts";

describe("parseChallenge", () => {
  it("Docker Hub's Bearer challenge", () => {
    const header =
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"';
    expect(parseChallenge(header)).toEqual([
      {
        scheme: "bearer",
        params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/alpine:pull" },
      },
    ]);
  });

  it("docker-registry's token challenge, with a comma inside a quoted scope and an error", () => {
    const header =
      'Bearer realm="http://127.0.0.1:5001/auth",service="Docker registry",scope="repository:team/app:pull,push",error="insufficient_scope"';
    const [c] = parseChallenge(header);
    expect(c.params).toEqual({
      realm: "http://127.0.0.1:5001/auth",
      service: "Docker registry",
      scope: "repository:team/app:pull,push",
      error: "insufficient_scope",
    });
  });

  it("Basic, as htpasswd-protected registries send it", () => {
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual([{ scheme: "basic", params: { realm: "Registry Realm" } }]);
  });

  it("several challenges in one value (or several header lines joined by Node)", () => {
    const header = 'Basic realm="r1", Bearer realm="https://t.example/token",service="svc", Basic realm="r2"';
    expect(parseChallenge(header)).toEqual([
      { scheme: "basic", params: { realm: "r1" } },
      { scheme: "bearer", params: { realm: "https://t.example/token", service: "svc" } },
      { scheme: "basic", params: { realm: "r2" } },
    ]);
  });

  it("escapes in quoted strings", () => {
    const [c] = parseChallenge('Bearer realm="a \\"quoted\\" realm, with \\\\ backslash",service=plain');
    expect(c.params).toEqual({ realm: 'a "quoted" realm, with \\ backslash', service: "plain" });
  });

  it("case-insensitive names, unquoted values, whitespace around = and commas", () => {
    const [c] = parseChallenge('BEARER  Realm = "https://x/token" ,  Service=registry.example.com ,,scope="s"');
    expect(c).toEqual({ scheme: "bearer", params: { realm: "https://x/token", service: "registry.example.com", scope: "s" } });
  });

  it("a scheme alone, and a token68 credential before another challenge", () => {
    expect(parseChallenge("Basic")).toEqual([{ scheme: "basic", params: {} }]);
    expect(parseChallenge('Negotiate YII+ab==, Basic realm="r"')).toEqual([
      { scheme: "negotiate", params: {}, token68: "YII+ab==" },
      { scheme: "basic", params: { realm: "r" } },
    ]);
  });

  it("an empty header means no challenge", () => {
    expect(parseChallenge("")).toEqual([]);
    expect(parseChallenge("  ,  ")).toEqual([]);
  });

  it.each([
    ['Bearer realm="https://auth.example/token', /unterminated quoted string/],
    ['Bearer realm="x" service="y"', /expected ","/],
    ['"quoted" scheme', /unexpected/],
  ])("refuses %j with one clear line", (header, why) => {
    let error: unknown;
    try {
      parseChallenge(header);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ImageError);
    expect((error as Error).message).toMatch(/^malformed WWW-Authenticate header/);
    expect((error as Error).message).toMatch(why);
    expect((error as Error).message).not.toContain("\n");
  });
});
