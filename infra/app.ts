#!/usr/bin/env node
/**
 * The CDK app of `cdk.json`: `npx cdk synth -c brokerConfig=path/to/config.json`, `npx cdk deploy
 * -c brokerConfig=...`. An operator's mistake (no or a bad configuration, a bad context value) is
 * printed as its message alone, without a stack trace, and fails the command.
 */
import { ConfigError } from '../lib/config/parse.js';
import { createBrokerApp } from './broker-app.js';
import { OperatorInputError } from './config.js';

try {
  // Synthesized here, not at process exit: a stack that failed half-way is never written.
  createBrokerApp({ autoSynth: false }).app.synth();
} catch (err) {
  if (!(err instanceof ConfigError || err instanceof OperatorInputError)) throw err;
  process.stderr.write(`\n${err.message}\n\n`);
  process.exitCode = 1;
}
