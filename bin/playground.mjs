#!/usr/bin/env node
// The `playground` command. The CLI is written in TypeScript; tsx's loader
// lets it run straight from the checkout in a single Node process.
import { register } from "tsx/esm/api";

register();
await import("../server/cli.ts");
