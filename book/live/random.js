// NumPy's `np.random.default_rng(seed).random()`, number for number, so that the book's "generate"
// button draws what `lib.generate(model, ids, n, seed=seed)` draws.
//
// `default_rng(seed)` is a PCG64 generator whose 256 bits of initial state come from a
// SeedSequence, and `random()` turns the generator's next 64 bits into a double in [0, 1). Both are
// unsigned integer arithmetic on 32-bit words (the seed sequence) and 128-bit words (PCG64); BigInt
// does it exactly. Sources: numpy/random/bit_generator.pyx (SeedSequence), numpy/random/src/pcg64/
// (PCG64), numpy/random/_common.pxd (`next_double`); the test compares with NumPy itself.

const MASK32 = (1n << 32n) - 1n;
const MASK64 = (1n << 64n) - 1n;
const MASK128 = (1n << 128n) - 1n;

// SeedSequence: the seed's 32-bit words are hashed into a pool of four words.
const POOL_SIZE = 4;
const INIT_A = 0x43b0d7e5n;
const MULT_A = 0x931e8875n;
const INIT_B = 0x8b51f9ddn;
const MULT_B = 0x58f38dedn;
const MIX_MULT_L = 0xca01f9ddn;
const MIX_MULT_R = 0x4973f715n;
const XSHIFT = 16n;

/** A non-negative integer as 32-bit words, least significant first (`[0]` for 0). */
function words32(n) {
  const words = [];
  do {
    words.push(n & MASK32);
    n >>= 32n;
  } while (n > 0n);
  return words;
}

/** The pool of a `SeedSequence(seed)`: four 32-bit words. */
function seedPool(seed) {
  const entropy = words32(seed);
  let hashConst = INIT_A;
  const hashmix = (value) => {
    value ^= hashConst;
    hashConst = (hashConst * MULT_A) & MASK32;
    value = (value * hashConst) & MASK32;
    return value ^ (value >> XSHIFT);
  };
  const mix = (x, y) => {
    const result = (MIX_MULT_L * x - MIX_MULT_R * y) & MASK32;
    return result ^ (result >> XSHIFT);
  };
  const pool = [];
  for (let i = 0; i < POOL_SIZE; i++) pool.push(hashmix(i < entropy.length ? entropy[i] : 0n));
  for (let src = 0; src < POOL_SIZE; src++) {
    for (let dst = 0; dst < POOL_SIZE; dst++) {
      if (src !== dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
    }
  }
  for (let src = POOL_SIZE; src < entropy.length; src++) {  // a seed longer than the pool
    for (let dst = 0; dst < POOL_SIZE; dst++) pool[dst] = mix(pool[dst], hashmix(entropy[src]));
  }
  return pool;
}

/** `SeedSequence(seed).generate_state(n, np.uint64)`: n 64-bit words, each two 32-bit words. */
function generateState64(seed, n) {
  const pool = seedPool(seed);
  let hashConst = INIT_B;
  const words = [];
  for (let i = 0; i < 2 * n; i++) {
    let value = pool[i % POOL_SIZE] ^ hashConst;
    hashConst = (hashConst * MULT_B) & MASK32;
    value = (value * hashConst) & MASK32;
    words.push(value ^ (value >> XSHIFT));
  }
  const out = [];
  for (let i = 0; i < n; i++) out.push(words[2 * i] | (words[2 * i + 1] << 32n));  // little-endian
  return out;
}

// PCG64: a 128-bit linear congruential state, output by "xor high and low halves, rotate" (XSL RR).
const PCG_MULTIPLIER = 0x2360ed051fc65da44385df649fccf645n;

/** `np.random.default_rng(seed)`: call `.random()` for the next double in [0, 1). */
export class Generator {
  constructor(seed) {
    seed = BigInt(seed);
    if (seed < 0n) throw new RangeError(`a seed must be a non-negative integer, got ${seed}`);
    const [s0, s1, i0, i1] = generateState64(seed, 4);
    const initState = (s0 << 64n) | s1;
    this.inc = (((i0 << 64n) | i1) << 1n | 1n) & MASK128;  // odd: the LCG's increment
    this.state = 0n;
    this.step();
    this.state = (this.state + initState) & MASK128;
    this.step();
  }

  step() {
    this.state = (this.state * PCG_MULTIPLIER + this.inc) & MASK128;
  }

  /** The next 64 random bits, as a BigInt. */
  nextUint64() {
    this.step();
    const xored = ((this.state >> 64n) ^ this.state) & MASK64;
    const rot = this.state >> 122n;  // the top six bits choose the rotation
    return ((xored >> rot) | (xored << ((64n - rot) & 63n))) & MASK64;
  }

  /** `Generator.random()`: the top 53 bits of the next 64, scaled into [0, 1). */
  random() {
    return Number(this.nextUint64() >> 11n) * 2 ** -53;
  }
}
