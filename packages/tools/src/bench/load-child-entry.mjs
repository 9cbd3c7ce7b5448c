// The load generator's child starts as plain Node: register tsx, then load the TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./load-child.ts');
