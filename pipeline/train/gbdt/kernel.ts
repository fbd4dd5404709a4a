// The tree-growing kernel of the gbdt trainer: histogram building, split finding and margin updates
// on the quantised matrix. `gbdtKernel` is self-contained (no imports, no outer references) so the
// same code runs in-process and inside worker threads, whose source is `gbdtKernel.toString()`:
// that works from TypeScript under vitest and from an esbuild bundle alike.

/** Arrays every thread sees; the big ones live in SharedArrayBuffers. */
export interface KernelShared {
  nRows: number;
  nValid: number;
  nFeatures: number;
  nClasses: number;
  /** Trees per round: 1 for binary, nClasses for softmax. */
  nGroups: number;
  /** Row-major bin codes, nRows × nFeatures. */
  bins: Uint8Array;
  validBins: Uint8Array;
  /** Real bins per feature; the code `nBins[f]` is that feature's missing-value bin. */
  nBins: Int32Array;
  /** Start of each feature's bins in a histogram; length nFeatures + 1. */
  featOffset: Int32Array;
  /** Gradient/hessian pairs (float32 halves memory traffic; sums are float64), group k, row r at (k * nRows + r) * 2. */
  gh: Float32Array;
  /** Raw scores, row-major nRows × nGroups (and nValid × nGroups). */
  margins: Float64Array;
  validMargins: Float64Array;
  /** The rows sampled for the current round, ascending. */
  sampled: Uint32Array;
  maxDepth: number;
  learningRate: number;
  lambda: number;
  alpha: number;
  minChildWeight: number;
}

export interface TreeTask {
  group: number;
  nSampled: number;
  /** Features this tree may split on, ascending. */
  features: Int32Array;
}

/** A grown tree; node 0 is the root, `left[i] < 0` marks a leaf. */
export interface KernelTree {
  group: number;
  feature: number[];
  /** Rows with bin ≤ splitBin go left. */
  splitBin: number[];
  defaultLeft: boolean[];
  left: number[];
  right: number[];
  /** Leaf output (learning rate applied, float32-rounded); 0 for split nodes. */
  value: number[];
  gain: number[];
  cover: number[];
}

export interface GbdtKernel {
  setup(shared: KernelShared): void;
  buildTree(task: TreeTask): KernelTree;
}

export function gbdtKernel(): GbdtKernel {
  let S: KernelShared;
  let histSize = 0;
  const pool: Float64Array[] = [];
  let rows = new Uint32Array(0);
  let scratch = new Uint32Array(0);
  let selOffset = new Int32Array(0);

  function takeHist(): Float64Array {
    return pool.pop() ?? new Float64Array(histSize * 2);
  }
  function giveHist(h: Float64Array | null): void {
    if (h) pool.push(h);
  }

  function setup(shared: KernelShared): void {
    S = shared;
    histSize = shared.featOffset[shared.nFeatures]!;
    pool.length = 0;
    rows = new Uint32Array(shared.nRows);
    scratch = new Uint32Array(shared.nRows);
  }

  // The hot loop: one pass over the node's rows, adding each row's gradient pair into the bin of
  // every sampled feature. Typed arrays only, no allocation.
  function buildHist(hist: Float64Array, start: number, end: number, ghOff: number, nSel: number): void {
    hist.fill(0);
    const bins = S.bins;
    const gh = S.gh;
    const F = S.nFeatures;
    const so = selOffset;
    const fs = selFeature;
    for (let i = start; i < end; i++) {
      const r = rows[i]!;
      const p = ghOff + 2 * r;
      const g = gh[p]!;
      const h = gh[p + 1]!;
      const base = r * F;
      for (let j = 0; j < nSel; j++) {
        const idx = (so[j]! + bins[base + fs[j]!]!) << 1;
        hist[idx]! += g;
        hist[idx + 1]! += h;
      }
    }
  }
  let selFeature = new Int32Array(0);

  function thresholdL1(g: number): number {
    const a = S.alpha;
    if (g > a) return g - a;
    if (g < -a) return g + a;
    return 0;
  }
  function score(g: number, h: number): number {
    const t = thresholdL1(g);
    return (t * t) / (h + S.lambda);
  }
  function leafWeight(g: number, h: number): number {
    return -thresholdL1(g) / (h + S.lambda);
  }

  // Best split of one node: for every feature and bin boundary, with missing values sent left or
  // right (XGBoost's sparsity-aware search). Result in `best*` variables to avoid allocation.
  let bestGain = 0;
  let bestFeature = -1;
  let bestBin = -1;
  let bestDefaultLeft = false;
  let bestGL = 0;
  let bestHL = 0;
  function findSplit(hist: Float64Array, G: number, H: number, nSel: number): void {
    const mcw = S.minChildWeight;
    const lambda = S.lambda;
    const l1 = S.alpha > 0;
    const parent = score(G, H);
    bestGain = 1e-6;
    bestFeature = -1;
    for (let j = 0; j < nSel; j++) {
      const f = selFeature[j]!;
      const off = selOffset[j]!;
      const nb = S.nBins[f]!;
      const gm = hist[(off + nb) << 1]!;
      const hm = hist[((off + nb) << 1) + 1]!;
      const hasMissing = hm > 0;
      let GL = 0;
      let HL = 0;
      // With missing values present, bin nb-1 is also a candidate: all values left, missing right.
      const last = hasMissing ? nb - 1 : nb - 2;
      for (let b = 0; b <= last; b++) {
        const hb = hist[((off + b) << 1) + 1]!;
        // An empty bin adds no new boundary (except the last: "all values left, missing right").
        if (hb === 0 && b !== last) continue;
        GL += hist[(off + b) << 1]!;
        HL += hb;
        // Missing to the right.
        let HR = H - HL;
        if (HL >= mcw && HR >= mcw) {
          const GR = G - GL;
          // Without L1, compare GL²/a + GR²/b > best + parent as GL²·b + GR²·a > (best + parent)·a·b: no division.
          const a = HL + lambda;
          const bb = HR + lambda;
          if (l1 ? score(GL, HL) + score(GR, HR) - parent > bestGain : GL * GL * bb + GR * GR * a > (bestGain + parent) * a * bb) {
            const gain = l1 ? score(GL, HL) + score(GR, HR) - parent : (GL * GL) / a + (GR * GR) / bb - parent;
            bestGain = gain;
            bestFeature = f;
            bestBin = b;
            bestGL = GL;
            bestHL = HL;
            // Without missing values in the node, unseen NaNs follow the heavier side.
            bestDefaultLeft = !hasMissing && HL >= HR;
          }
        }
        if (hasMissing && b < nb - 1) {
          const gl = GL + gm;
          const hl = HL + hm;
          HR = H - hl;
          if (hl >= mcw && HR >= mcw) {
            const GR = G - gl;
            const a = hl + lambda;
            const bb = HR + lambda;
            if (l1 ? score(gl, hl) + score(GR, HR) - parent > bestGain : gl * gl * bb + GR * GR * a > (bestGain + parent) * a * bb) {
              const gain = l1 ? score(gl, hl) + score(GR, HR) - parent : (gl * gl) / a + (GR * GR) / bb - parent;
              bestGain = gain;
              bestFeature = f;
              bestBin = b;
              bestGL = gl;
              bestHL = hl;
              bestDefaultLeft = true;
            }
          }
        }
      }
    }
  }

  // Stable partition of rows[start, end) by the split; returns the first right-hand index.
  function partition(start: number, end: number, f: number, splitBin: number, defaultLeft: boolean): number {
    const bins = S.bins;
    const F = S.nFeatures;
    const missing = S.nBins[f]!;
    let l = start;
    let nr = 0;
    for (let i = start; i < end; i++) {
      const r = rows[i]!;
      const b = bins[r * F + f]!;
      const goLeft = b === missing ? defaultLeft : b <= splitBin;
      if (goLeft) rows[l++] = r;
      else scratch[nr++] = r;
    }
    rows.set(scratch.subarray(0, nr), l);
    return l;
  }

  function buildTree(task: TreeTask): KernelTree {
    const { group, nSampled, features } = task;
    const nSel = features.length;
    selFeature = Int32Array.from(features);
    selOffset = new Int32Array(nSel);
    for (let j = 0; j < nSel; j++) selOffset[j] = S.featOffset[selFeature[j]!]!;
    rows.set(S.sampled.subarray(0, nSampled));
    const ghOff = group * S.nRows * 2;
    const mcw = S.minChildWeight;
    const lr = S.learningRate;

    const tree: KernelTree = { group, feature: [], splitBin: [], defaultLeft: [], left: [], right: [], value: [], gain: [], cover: [] };
    const addNode = (cover: number): number => {
      tree.feature.push(-1);
      tree.splitBin.push(-1);
      tree.defaultLeft.push(false);
      tree.left.push(-1);
      tree.right.push(-1);
      tree.value.push(0);
      tree.gain.push(0);
      tree.cover.push(cover);
      return tree.feature.length - 1;
    };

    let G = 0;
    let H = 0;
    for (let i = 0; i < nSampled; i++) {
      const p = ghOff + 2 * rows[i]!;
      G += S.gh[p]!;
      H += S.gh[p + 1]!;
    }
    const root = addNode(H);
    // Work items of the current level: node, row range, gradient sums, histogram (null = none needed).
    let level: { node: number; start: number; end: number; G: number; H: number; hist: Float64Array | null }[] = [];
    const canSplit = (h: number, n: number, depth: number) => depth < S.maxDepth && n >= 2 && h >= 2 * mcw;
    let rootHist: Float64Array | null = null;
    if (canSplit(H, nSampled, 0) && nSel > 0) {
      rootHist = takeHist();
      buildHist(rootHist, 0, nSampled, ghOff, nSel);
    }
    level.push({ node: root, start: 0, end: nSampled, G, H, hist: rootHist });

    for (let depth = 0; level.length > 0; depth++) {
      const next: typeof level = [];
      for (const item of level) {
        const { node, hist } = item;
        if (hist) findSplit(hist, item.G, item.H, nSel);
        if (!hist || bestFeature < 0) {
          tree.value[node] = Math.fround(lr * leafWeight(item.G, item.H));
          giveHist(hist);
          continue;
        }
        const f = bestFeature;
        const b = bestBin;
        const dl = bestDefaultLeft;
        const GL = bestGL;
        const HL = bestHL;
        const GR = item.G - GL;
        const HR = item.H - HL;
        tree.feature[node] = f;
        tree.splitBin[node] = b;
        tree.defaultLeft[node] = dl;
        tree.gain[node] = bestGain;
        const ln = addNode(HL);
        const rn = addNode(HR);
        tree.left[node] = ln;
        tree.right[node] = rn;

        const childDepth = depth + 1;
        // Row counts are only known after partitioning; hessian sums decide whether that is needed.
        const mayL = canSplit(HL, 2, childDepth);
        const mayR = canSplit(HR, 2, childDepth);
        if (!mayL && !mayR) {
          tree.value[ln] = Math.fround(lr * leafWeight(GL, HL));
          tree.value[rn] = Math.fround(lr * leafWeight(GR, HR));
          giveHist(hist);
          continue;
        }
        const mid = partition(item.start, item.end, f, b, dl);
        const nL = mid - item.start;
        const nR = item.end - mid;
        const needL = canSplit(HL, nL, childDepth);
        const needR = canSplit(HR, nR, childDepth);
        let histL: Float64Array | null = null;
        let histR: Float64Array | null = null;
        if (needL || needR) {
          // Build the smaller child, derive its sibling by subtraction from the parent (in place).
          const small = takeHist();
          const leftSmaller = nL <= nR;
          if (leftSmaller) buildHist(small, item.start, mid, ghOff, nSel);
          else buildHist(small, mid, item.end, ghOff, nSel);
          const big = hist;
          for (let j = 0; j < nSel; j++) {
            const from = selOffset[j]! << 1;
            const to = (selOffset[j]! + S.nBins[selFeature[j]!]! + 1) << 1;
            for (let k = from; k < to; k++) big[k]! -= small[k]!;
          }
          histL = leftSmaller ? small : big;
          histR = leftSmaller ? big : small;
          if (!needL) {
            giveHist(histL);
            histL = null;
          }
          if (!needR) {
            giveHist(histR);
            histR = null;
          }
        } else giveHist(hist);
        next.push({ node: ln, start: item.start, end: mid, G: GL, H: HL, hist: histL });
        next.push({ node: rn, start: mid, end: item.end, G: GR, H: HR, hist: histR });
      }
      level = next;
    }

    applyTree(tree, S.bins, S.nRows, S.margins);
    if (S.nValid > 0) applyTree(tree, S.validBins, S.nValid, S.validMargins);
    return tree;
  }

  // Add the tree's output to every row's margin (sampled or not), walking the bin codes.
  function applyTree(tree: KernelTree, bins: Uint8Array, n: number, margins: Float64Array): void {
    const F = S.nFeatures;
    const K = S.nGroups;
    const k = tree.group;
    const feature = Int32Array.from(tree.feature);
    const splitBin = Int32Array.from(tree.splitBin);
    const left = Int32Array.from(tree.left);
    const right = Int32Array.from(tree.right);
    const dl = Uint8Array.from(tree.defaultLeft, (d) => (d ? 1 : 0));
    const value = Float64Array.from(tree.value);
    const nBins = S.nBins;
    for (let r = 0; r < n; r++) {
      let node = 0;
      const base = r * F;
      while (left[node]! >= 0) {
        const f = feature[node]!;
        const b = bins[base + f]!;
        const goLeft = b === nBins[f]! ? dl[node] === 1 : b <= splitBin[node]!;
        node = goLeft ? left[node]! : right[node]!;
      }
      margins[r * K + k]! += value[node]!;
    }
  }

  return { setup, buildTree };
}
