#!/usr/bin/env node
/** The CDK app of `cdk.json`: `npx cdk synth`, `npx cdk deploy -c brokerConfig=path/to/config.json`. */
import { createBrokerApp } from './broker-app.js';

createBrokerApp();
