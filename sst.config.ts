/// <reference path="./.sst/platform/config.d.ts" />
export default $config({
  app(input) {
    return { name: 'ensemble', home: 'aws', removal: input?.stage === 'prod' ? 'retain' : 'remove' };
  },
  async run() {},
});
