#!/usr/bin/env node
/** `npm run broker -- <area> <command> ...`: see lib/cli/main.ts. */
import { run } from '../lib/cli/main.js';

process.exitCode = await run(process.argv.slice(2));
