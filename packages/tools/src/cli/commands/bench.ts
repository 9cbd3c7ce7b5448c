import type { Command } from '../args.js';
import { str, UsageError } from '../args.js';
import { runBench, SCENARIOS, type ScenarioName } from '../../bench/run.js';
import { profileTiny, summarizeProfileFile } from '../../bench/profile.js';

export const benchCommand: Command = {
  name: 'bench',
  summary: 'Benchmark on this machine against baselines in the same run; print a table, write docs/benchmarks.md and a chart.',
  usage: 'bench [--scenario tiny|ocr|ocr-lambda|pipelined|job|memory|coldstart|all ...] [--quick] [--job-images N] [--out docs/benchmarks.md] | bench --profile FILE.cpuprofile [--concurrency N] | bench --summarize FILE.cpuprofile',
  help: [
    ['--scenario S', 'tiny (demo vs a hand-written server), ocr (vs @gutenye/ocr-node and a plain loop), ocr-lambda (OCR through the Lambda transport and the local Lambda host vs the worker pool), pipelined (64 items through a cut model), job (an OCR batch job vs the synchronous endpoint), memory (RSS of npm start at rest and under OCR load), coldstart (OCR stage functions from a fresh sandbox with an empty /tmp); repeatable; default all'],
    ['--job-images N', 'images in the job scenario\'s job (default 1000, 100 with --quick)'],
    ['--quick', 'fewer requests per level (about a minute in all instead of several)'],
    ['--out FILE', 'where the markdown report goes (default docs/benchmarks.md); the chart is written next to it as .svg'],
    ['--profile FILE', 'instead: load the tiny pipeline (8 s at --concurrency, default 64) with the CPU profiler on, write FILE and print self time by part and function'],
    ['--summarize FILE', 'instead: print that summary for a .cpuprofile written before (e.g. by node --cpu-prof)'],
  ],
  options: {
    scenario: { type: 'string', multiple: true }, quick: { type: 'boolean' }, out: { type: 'string' }, 'job-images': { type: 'string' },
    profile: { type: 'string' }, summarize: { type: 'string' }, concurrency: { type: 'string' },
  },
  async run({ values, positionals }) {
    if (positionals.length) throw new UsageError(`bench takes no positional arguments, got '${positionals.join(' ')}'`);
    if (typeof values.summarize === 'string') {
      console.log(await summarizeProfileFile(values.summarize));
      return 0;
    }
    if (typeof values.profile === 'string') {
      const concurrency = Number(str(values.concurrency, '64'));
      if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError(`--concurrency must be a positive integer, got '${String(values.concurrency)}'`);
      console.log(await profileTiny({ root: process.cwd(), out: values.profile, concurrency }));
      return 0;
    }
    const names = Object.keys(SCENARIOS) as ScenarioName[];
    const asked = (values.scenario as string[] | undefined) ?? ['all'];
    const scenarios = asked.includes('all') ? names : asked.map((s) => {
      if (!names.includes(s as ScenarioName)) throw new UsageError(`unknown scenario '${s}': use ${names.join(', ')} or all`);
      return s as ScenarioName;
    });
    const quick = values.quick === true;
    const out = str(values.out, 'docs/benchmarks.md');
    const jobImagesArg = values['job-images'] as string | undefined;
    const jobImages = jobImagesArg === undefined ? undefined : Number(jobImagesArg);
    if (jobImages !== undefined && (!Number.isInteger(jobImages) || jobImages < 1 || jobImages > 100_000)) {
      throw new UsageError(`--job-images takes a whole number of images from 1 to 100000, got '${jobImagesArg}'`);
    }
    const flags = [...(quick ? ['--quick'] : []), ...(asked[0] !== 'all' ? asked.map((s) => `--scenario ${s}`) : []), ...(jobImages !== undefined ? [`--job-images ${jobImages}`] : [])];
    const report = await runBench({
      scenarios, quick, out, root: process.cwd(), jobImages,
      command: ['npm run bench', ...(flags.length ? ['--', ...flags] : [])].join(' '),
    });
    return report.errors.length ? 1 : 0;
  },
};
