import { describe, expect, it } from "vitest";
import { CONTAINER_ID, CONTAINER_NAME, newContainerId, newContainerName } from "../../server/engine/lifecycle/names.ts";

describe("container ids and names", () => {
  it("ids are 12 hex digits and differ", () => {
    const ids = new Set(Array.from({ length: 200 }, newContainerId));
    expect(ids.size).toBe(200);
    for (const id of ids) expect(id).toMatch(CONTAINER_ID);
  });
  it("names look like adjective_noun, are valid names, and avoid the taken ones", () => {
    const taken = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const name = newContainerName(taken);
      expect(name).toMatch(CONTAINER_NAME);
      expect(taken.has(name)).toBe(false);
      taken.add(name);
    }
    expect([...taken][0]).toMatch(/^[a-z]+_[a-z]+$/);
  });
});
