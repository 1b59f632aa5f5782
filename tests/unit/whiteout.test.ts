// The rules of layer application that need no disk: what an entry name means
// (whiteout, opaque marker, plain file), which names are refused, how an entry
// treats what an earlier entry of the same layer left at its path, and how
// owners are shifted into the container's uid range.
import { describe, expect, test } from "vitest";
import { entryComponents, entryMeaning, LayerError, resolveExisting, shiftId } from "../../server/engine/image/layer-rules.ts";

describe("entry names", () => {
  test("are anchored at the layer root: leading '/', './' and empty components mean the same file", () => {
    for (const name of ["etc/passwd", "/etc/passwd", "./etc/passwd", "etc//passwd", "./etc/./passwd", "//etc/passwd/"]) {
      expect(entryComponents(name), name).toEqual(["etc", "passwd"]);
    }
  });

  test("the root itself is the empty path", () => {
    for (const name of ["./", "/", ".", ""]) expect(entryComponents(name), name).toEqual([]);
  });

  test("a '..' component is refused wherever it is, even one that would stay inside", () => {
    for (const name of ["../etc/passwd", "a/../../etc", "a/b/..", "/../x", "usr/../etc/shadow"]) {
      expect(() => entryComponents(name), name).toThrow(LayerError);
      expect(() => entryComponents(name), name).toThrow(/"\.\."/);
    }
  });

  test("names that merely contain dots are ordinary", () => {
    expect(entryComponents("a/..b/c../...")).toEqual(["a", "..b", "c..", "..."]);
  });

  test("a NUL byte is refused", () => {
    expect(() => entryComponents("etc/pass\0wd")).toThrow(/NUL/);
  });
});

describe("whiteouts (OCI image spec)", () => {
  test(".wh.NAME deletes NAME in the same directory", () => {
    expect(entryMeaning("etc/.wh.motd")).toEqual({ kind: "whiteout", path: ["etc", "motd"] });
    expect(entryMeaning("./.wh.tmp")).toEqual({ kind: "whiteout", path: ["tmp"] });
    expect(entryMeaning("/usr/lib/.wh..hidden")).toEqual({ kind: "whiteout", path: ["usr", "lib", ".hidden"] });
  });

  test(".wh..wh..opq makes its directory opaque", () => {
    expect(entryMeaning("var/cache/.wh..wh..opq")).toEqual({ kind: "opaque", dir: ["var", "cache"] });
    expect(entryMeaning(".wh..wh..opq")).toEqual({ kind: "opaque", dir: [] });
  });

  test("other .wh..wh. names are aufs bookkeeping and ignored", () => {
    expect(entryMeaning(".wh..wh.plnk/123.456").kind).toBe("plain"); // a file inside such a dir is not itself a marker
    expect(entryMeaning(".wh..wh.plnk")).toEqual({ kind: "ignore", path: [".wh..wh.plnk"] });
    expect(entryMeaning("a/.wh..wh.aufs")).toEqual({ kind: "ignore", path: ["a", ".wh..wh.aufs"] });
  });

  test("only the last component is a marker: a directory named .wh.x is just a name in a path", () => {
    expect(entryMeaning(".wh.dir/file")).toEqual({ kind: "plain", path: [".wh.dir", "file"] });
  });

  test("a whiteout must name a file: .wh., .wh.. and .wh... are refused", () => {
    for (const name of ["etc/.wh.", "etc/.wh..", "etc/.wh..."]) {
      expect(() => entryMeaning(name), name).toThrow(LayerError);
    }
  });

  test("whiteout names obey the path rules too", () => {
    expect(() => entryMeaning("../.wh.passwd")).toThrow(/"\.\."/);
    expect(entryMeaning("/etc/.wh.passwd")).toEqual({ kind: "whiteout", path: ["etc", "passwd"] });
  });

  test("plain names", () => {
    expect(entryMeaning("etc/wh.conf")).toEqual({ kind: "plain", path: ["etc", "wh.conf"] });
    expect(entryMeaning("etc/x.wh.y")).toEqual({ kind: "plain", path: ["etc", "x.wh.y"] });
  });
});

describe("what an entry does to an earlier entry at its path", () => {
  test("nothing there: create", () => {
    for (const kind of ["directory", "file", "symlink", "hardlink", "whiteout"] as const) {
      expect(resolveExisting("none", kind)).toBe("create");
    }
  });

  test("a directory over a directory merges; anything else replaces", () => {
    expect(resolveExisting("directory", "directory")).toBe("merge");
    expect(resolveExisting("directory", "file")).toBe("replace");
    expect(resolveExisting("other", "directory")).toBe("replace");
    expect(resolveExisting("other", "symlink")).toBe("replace");
    expect(resolveExisting("whiteout", "file")).toBe("replace");
  });

  test("a whiteout never removes this layer's own file: it only hides lower layers", () => {
    expect(resolveExisting("other", "whiteout")).toBe("keep");
    expect(resolveExisting("directory", "whiteout")).toBe("keep");
    expect(resolveExisting("whiteout", "whiteout")).toBe("keep");
  });
});

describe("ownership shift", () => {
  const base = 100000;
  const count = 65536;

  test("container id N is host id base+N", () => {
    expect(shiftId(0, base, count)).toEqual({ hostId: 100000, clamped: false });
    expect(shiftId(1000, base, count)).toEqual({ hostId: 101000, clamped: false });
    expect(shiftId(65535, base, count)).toEqual({ hostId: 165535, clamped: false });
  });

  test("an id outside the range becomes the container's nobody, never a host id outside the range", () => {
    expect(shiftId(65536, base, count)).toEqual({ hostId: 165534, clamped: true });
    expect(shiftId(1_000_000, base, count)).toEqual({ hostId: 165534, clamped: true });
    expect(shiftId(-1, base, count)).toEqual({ hostId: 165534, clamped: true });
    expect(shiftId(Number.NaN, base, count)).toEqual({ hostId: 165534, clamped: true });
  });

  test("with a small range, nobody is its last id", () => {
    expect(shiftId(5000, 200000, 1000)).toEqual({ hostId: 200999, clamped: true });
    expect(shiftId(999, 200000, 1000)).toEqual({ hostId: 200999, clamped: false });
  });
});
