// Command-line parsing: `--name value`, `--name=value`, boolean `--flag`, `--` ends options.

import { ConfigurationError } from '../core/errors.ts';
import { suggestion } from '../core/suggest.ts';
import type { CliOption, ParsedArgs } from './types.ts';

export function parseArgs(argv: readonly string[], options: readonly CliOption[], allowUnknown = false): ParsedArgs {
  const parsed: ParsedArgs = { positionals: [], flags: {}, extra: {} };
  const byName = new Map(options.map((o) => [o.name, o]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      parsed.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h') {
      parsed.flags.help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      if (arg.startsWith('-') && arg.length > 1) throw new ConfigurationError(`unknown option \`${arg}\``, { hint: 'options are spelled `--name`' });
      parsed.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const option = byName.get(name);
    const next = argv[i + 1];
    const takesNext = next !== undefined && !next.startsWith('--');
    if (option?.type === 'boolean') {
      if (inline !== undefined && !/^(true|false)$/i.test(inline)) throw new ConfigurationError(`option \`--${name}\` is a flag: use \`--${name}\` alone`);
      parsed.flags[name] = inline === undefined ? true : inline.toLowerCase() === 'true';
    } else if (option) {
      if (inline !== undefined) parsed.flags[name] = inline;
      else if (takesNext) parsed.flags[name] = argv[++i]!;
      else throw new ConfigurationError(`option \`--${name}\` needs a value${option.value ? ` ${option.value}` : ''}`);
    } else if (allowUnknown && name) {
      parsed.extra[name] = inline ?? (takesNext ? argv[++i]! : 'true');
    } else {
      throw new ConfigurationError(`unknown option \`--${name}\``, { hint: suggestion(name, options.map((o) => o.name)) });
    }
  }
  return parsed;
}
