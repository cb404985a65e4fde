#!/usr/bin/env node
// `npx cesar`: the CLI in scripts/cesar.ts, run through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../scripts/cesar.ts');
