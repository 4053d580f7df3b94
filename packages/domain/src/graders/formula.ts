// A multi grader's calculate_output: arithmetic over its graders' scores by name, parsed once
// into a function. Numbers, names, + - * / ^ (right-associative), unary minus, parentheses and
// the functions min, max (any number of arguments), abs, floor, ceil, exp, sqrt, log.

export class FormulaError extends Error {}

type Node = (scores: Readonly<Record<string, number>>) => number;

const FUNCTIONS: Record<string, { arity: number | 'any'; f: (...a: number[]) => number }> = {
  min: { arity: 'any', f: Math.min },
  max: { arity: 'any', f: Math.max },
  abs: { arity: 1, f: Math.abs },
  floor: { arity: 1, f: Math.floor },
  ceil: { arity: 1, f: Math.ceil },
  exp: { arity: 1, f: Math.exp },
  sqrt: { arity: 1, f: Math.sqrt },
  log: { arity: 1, f: Math.log },
};

const TOKEN = /\s*(?:(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|([-+*/^(),]))/y;

function tokenize(src: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < src.length) {
    if (/^\s*$/.test(src.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(src);
    if (!m) throw new FormulaError(`unexpected ${JSON.stringify(src.slice(at).trim()[0])} at character ${at + 1}`);
    out.push((m[1] ?? m[2] ?? m[3]) as string);
  }
  return out;
}

/** Compiles `src` over the names `names`; throws FormulaError naming what is wrong. */
export function compileFormula(src: string, names: readonly string[]): Node {
  const tokens = tokenize(src);
  const known = new Set(names);
  let i = 0;
  const peek = () => tokens[i];
  const expect = (t: string) => {
    if (tokens[i] !== t) throw new FormulaError(`expected "${t}"${tokens[i] === undefined ? ' at the end' : ` before "${tokens[i]}"`}`);
    i++;
  };
  const sum = (): Node => {
    let left = product();
    while (peek() === '+' || peek() === '-') {
      const op = tokens[i++];
      const a = left;
      const b = product();
      left = op === '+' ? (s) => a(s) + b(s) : (s) => a(s) - b(s);
    }
    return left;
  };
  const product = (): Node => {
    let left = unary();
    while (peek() === '*' || peek() === '/') {
      const op = tokens[i++];
      const a = left;
      const b = unary();
      left = op === '*' ? (s) => a(s) * b(s) : (s) => a(s) / b(s);
    }
    return left;
  };
  const unary = (): Node => {
    if (peek() === '-') {
      i++;
      const a = unary();
      return (s) => -a(s);
    }
    if (peek() === '+') {
      i++;
      return unary();
    }
    return power();
  };
  const power = (): Node => {
    const base = atom();
    if (peek() !== '^') return base;
    i++;
    const exponent = unary();
    return (s) => base(s) ** exponent(s);
  };
  const atom = (): Node => {
    const t = tokens[i++];
    if (t === undefined) throw new FormulaError('the formula ends too early');
    if (t === '(') {
      const inner = sum();
      expect(')');
      return inner;
    }
    if (/^[\d.]/.test(t)) {
      const v = Number(t);
      return () => v;
    }
    if (/^[A-Za-z_]/.test(t)) {
      if (peek() === '(') {
        const fn = FUNCTIONS[t];
        if (!fn) throw new FormulaError(`unknown function ${t} (available: ${Object.keys(FUNCTIONS).join(', ')})`);
        i++;
        const args: Node[] = [];
        if (peek() !== ')') {
          args.push(sum());
          while (peek() === ',') {
            i++;
            args.push(sum());
          }
        }
        expect(')');
        if (fn.arity === 'any' ? args.length === 0 : args.length !== fn.arity) {
          throw new FormulaError(`${t} takes ${fn.arity === 'any' ? 'one or more arguments' : `${fn.arity} argument`}, got ${args.length}`);
        }
        return (s) => fn.f(...args.map((a) => a(s)));
      }
      if (!known.has(t)) throw new FormulaError(`"${t}" is not one of the graders (${names.join(', ')})`);
      return (s) => s[t] as number;
    }
    throw new FormulaError(`unexpected "${t}"`);
  };
  const root = sum();
  if (i < tokens.length) throw new FormulaError(`unexpected "${tokens[i]}" after a complete expression`);
  return root;
}
