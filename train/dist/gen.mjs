// train/gen.ts
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs as nodeParseArgs } from "node:util";

// sim/robot/action.ts
var CHUNK_TICKS = 4;
var ACTION_SIZE = 3;
var finite = (v) => Number.isFinite(v) ? v : 0;
var clamp1 = (v) => Math.min(1, Math.max(-1, finite(v)));
function clampAction(action) {
  let dx = clamp1(action.dx);
  let dy = clamp1(action.dy);
  const norm = Math.hypot(dx, dy);
  if (norm > 1) {
    dx /= norm;
    dy /= norm;
  }
  return { dx, dy, grip: finite(action.grip) >= 0.5 ? 1 : 0 };
}
function chunkToArray(chunk) {
  const out = new Float32Array(chunk.length * ACTION_SIZE);
  chunk.forEach((a, i2) => out.set([a.dx, a.dy, a.grip], i2 * ACTION_SIZE));
  return out;
}

// sim/robot/world.ts
var TICK_S = 0.1;
var MAX_SPEED_MPS = 1;
var MAX_STEP_M = MAX_SPEED_MPS * TICK_S;
var GRASP_RADIUS_M = 0.06;
var GRIPPER_RADIUS_M = 0.05;
var clamp01 = (v) => Math.min(1, Math.max(0, v));
function distance(a, b) {
  return Math.hypot(a.x - b.x, a.y - b.y);
}
function cloneWorld(world) {
  return {
    tick: world.tick,
    gripper: { ...world.gripper },
    objects: world.objects.map((o) => ({ ...o })),
    markers: world.markers.map((m) => ({ ...m })),
    occluders: world.occluders.map((r) => ({ ...r }))
  };
}
function graspCandidate(world) {
  let best = -1;
  let bestM = GRASP_RADIUS_M;
  world.objects.forEach((o, i2) => {
    const d = distance(o, world.gripper);
    if (o.graspable && d <= bestM) [best, bestM] = [i2, d];
  });
  return best;
}
function stepWorld(world, action) {
  const a = clampAction(action);
  const g = world.gripper;
  const x2 = clamp01(g.x + a.dx * MAX_STEP_M);
  const y = clamp01(g.y + a.dy * MAX_STEP_M);
  g.vx = (x2 - g.x) / TICK_S;
  g.vy = (y - g.y) / TICK_S;
  g.x = x2;
  g.y = y;
  if (g.held >= 0) Object.assign(world.objects[g.held], { x: x2, y });
  if (a.grip === 0) g.held = -1;
  else if (g.grip === 0) g.held = graspCandidate(world);
  g.grip = a.grip;
  world.tick += 1;
}

// sim/robot/episode.ts
function advance(episode, world, action) {
  const braked = world.tick < episode.holdUntilTick;
  stepWorld(world, braked ? { dx: 0, dy: 0, grip: world.gripper.grip } : action);
  episode.script(world);
}

// node_modules/fflate/esm/index.mjs
import { createRequire } from "module";
var require2 = createRequire("/");
var _a;
var Worker;
var isMarkedAsUntransferable;
try {
  _a = require2("worker_threads"), Worker = _a.Worker, isMarkedAsUntransferable = _a.isMarkedAsUntransferable;
} catch (e) {
}
var u8 = Uint8Array;
var u16 = Uint16Array;
var i32 = Int32Array;
var fleb = new u8([
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  1,
  1,
  1,
  1,
  2,
  2,
  2,
  2,
  3,
  3,
  3,
  3,
  4,
  4,
  4,
  4,
  5,
  5,
  5,
  5,
  0,
  /* unused */
  0,
  0,
  /* impossible */
  0
]);
var fdeb = new u8([
  0,
  0,
  0,
  0,
  1,
  1,
  2,
  2,
  3,
  3,
  4,
  4,
  5,
  5,
  6,
  6,
  7,
  7,
  8,
  8,
  9,
  9,
  10,
  10,
  11,
  11,
  12,
  12,
  13,
  13,
  /* unused */
  0,
  0
]);
var clim = new u8([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]);
var freb = function(eb, start) {
  var b = new u16(31);
  for (var i2 = 0; i2 < 31; ++i2) {
    b[i2] = start += 1 << eb[i2 - 1];
  }
  var r = new i32(b[30]);
  for (var i2 = 1; i2 < 30; ++i2) {
    for (var j = b[i2]; j < b[i2 + 1]; ++j) {
      r[j] = j - b[i2] << 5 | i2;
    }
  }
  return { b, r };
};
var _a = freb(fleb, 2);
var fl = _a.b;
var revfl = _a.r;
fl[28] = 258, revfl[258] = 28;
var _b = freb(fdeb, 0);
var fd = _b.b;
var revfd = _b.r;
var rev = new u16(32768);
for (i = 0; i < 32768; ++i) {
  x = (i & 43690) >> 1 | (i & 21845) << 1;
  x = (x & 52428) >> 2 | (x & 13107) << 2;
  x = (x & 61680) >> 4 | (x & 3855) << 4;
  rev[i] = ((x & 65280) >> 8 | (x & 255) << 8) >> 1;
}
var x;
var i;
var hMap = (function(cd, mb, r) {
  var s = cd.length;
  var i2 = 0;
  var l = new u16(mb);
  for (; i2 < s; ++i2) {
    if (cd[i2])
      ++l[cd[i2] - 1];
  }
  var le = new u16(mb);
  for (i2 = 1; i2 < mb; ++i2) {
    le[i2] = le[i2 - 1] + l[i2 - 1] << 1;
  }
  var co;
  if (r) {
    co = new u16(1 << mb);
    var rvb = 15 - mb;
    for (i2 = 0; i2 < s; ++i2) {
      if (cd[i2]) {
        var sv = i2 << 4 | cd[i2];
        var r_1 = mb - cd[i2];
        var v = le[cd[i2] - 1]++ << r_1;
        for (var m = v | (1 << r_1) - 1; v <= m; ++v) {
          co[rev[v] >> rvb] = sv;
        }
      }
    }
  } else {
    co = new u16(s);
    for (i2 = 0; i2 < s; ++i2) {
      if (cd[i2]) {
        co[i2] = rev[le[cd[i2] - 1]++] >> 15 - cd[i2];
      }
    }
  }
  return co;
});
var flt = new u8(288);
for (i = 0; i < 144; ++i)
  flt[i] = 8;
var i;
for (i = 144; i < 256; ++i)
  flt[i] = 9;
var i;
for (i = 256; i < 280; ++i)
  flt[i] = 7;
var i;
for (i = 280; i < 288; ++i)
  flt[i] = 8;
var i;
var fdt = new u8(32);
for (i = 0; i < 32; ++i)
  fdt[i] = 5;
var i;
var flm = /* @__PURE__ */ hMap(flt, 9, 0);
var fdm = /* @__PURE__ */ hMap(fdt, 5, 0);
var shft = function(p) {
  return (p + 7) / 8 | 0;
};
var slc = function(v, s, e) {
  if (s == null || s < 0)
    s = 0;
  if (e == null || e > v.length)
    e = v.length;
  return new u8(v.subarray(s, e));
};
var wbits = function(d, p, v) {
  v <<= p & 7;
  var o = p / 8 | 0;
  d[o] |= v;
  d[o + 1] |= v >> 8;
};
var wbits16 = function(d, p, v) {
  v <<= p & 7;
  var o = p / 8 | 0;
  d[o] |= v;
  d[o + 1] |= v >> 8;
  d[o + 2] |= v >> 16;
};
var hTree = function(d, mb) {
  var t = [];
  for (var i2 = 0; i2 < d.length; ++i2) {
    if (d[i2])
      t.push({ s: i2, f: d[i2] });
  }
  var s = t.length;
  var t2 = t.slice();
  if (!s)
    return { t: et, l: 0 };
  if (s == 1) {
    var v = new u8(t[0].s + 1);
    v[t[0].s] = 1;
    return { t: v, l: 1 };
  }
  t.sort(function(a, b) {
    return a.f - b.f;
  });
  t.push({ s: -1, f: 25001 });
  var l = t[0], r = t[1], i0 = 0, i1 = 1, i22 = 2;
  t[0] = { s: -1, f: l.f + r.f, l, r };
  while (i1 != s - 1) {
    l = t[t[i0].f < t[i22].f ? i0++ : i22++];
    r = t[i0 != i1 && t[i0].f < t[i22].f ? i0++ : i22++];
    t[i1++] = { s: -1, f: l.f + r.f, l, r };
  }
  var maxSym = t2[0].s;
  for (var i2 = 1; i2 < s; ++i2) {
    if (t2[i2].s > maxSym)
      maxSym = t2[i2].s;
  }
  var tr = new u16(maxSym + 1);
  var mbt = ln(t[i1 - 1], tr, 0);
  if (mbt > mb) {
    var i2 = 0, dt = 0;
    var lft = mbt - mb, cst = 1 << lft;
    t2.sort(function(a, b) {
      return tr[b.s] - tr[a.s] || a.f - b.f;
    });
    for (; i2 < s; ++i2) {
      var i2_1 = t2[i2].s;
      if (tr[i2_1] > mb) {
        dt += cst - (1 << mbt - tr[i2_1]);
        tr[i2_1] = mb;
      } else
        break;
    }
    dt >>= lft;
    while (dt > 0) {
      var i2_2 = t2[i2].s;
      if (tr[i2_2] < mb)
        dt -= 1 << mb - tr[i2_2]++ - 1;
      else
        ++i2;
    }
    for (; i2 >= 0 && dt; --i2) {
      var i2_3 = t2[i2].s;
      if (tr[i2_3] == mb) {
        --tr[i2_3];
        ++dt;
      }
    }
    mbt = mb;
  }
  return { t: new u8(tr), l: mbt };
};
var ln = function(n, l, d) {
  return n.s == -1 ? Math.max(ln(n.l, l, d + 1), ln(n.r, l, d + 1)) : l[n.s] = d;
};
var lc = function(c) {
  var s = c.length;
  while (s && !c[--s])
    ;
  var cl = new u16(++s);
  var cli = 0, cln = c[0], cls = 1;
  var w = function(v) {
    cl[cli++] = v;
  };
  for (var i2 = 1; i2 <= s; ++i2) {
    if (c[i2] == cln && i2 != s)
      ++cls;
    else {
      if (!cln && cls > 2) {
        for (; cls > 138; cls -= 138)
          w(32754);
        if (cls > 2) {
          w(cls > 10 ? cls - 11 << 5 | 28690 : cls - 3 << 5 | 12305);
          cls = 0;
        }
      } else if (cls > 3) {
        w(cln), --cls;
        for (; cls > 6; cls -= 6)
          w(8304);
        if (cls > 2)
          w(cls - 3 << 5 | 8208), cls = 0;
      }
      while (cls--)
        w(cln);
      cls = 1;
      cln = c[i2];
    }
  }
  return { c: cl.subarray(0, cli), n: s };
};
var clen = function(cf, cl) {
  var l = 0;
  for (var i2 = 0; i2 < cl.length; ++i2)
    l += cf[i2] * cl[i2];
  return l;
};
var wfblk = function(out, pos, dat) {
  var s = dat.length;
  var o = shft(pos + 2);
  out[o] = s & 255;
  out[o + 1] = s >> 8;
  out[o + 2] = out[o] ^ 255;
  out[o + 3] = out[o + 1] ^ 255;
  for (var i2 = 0; i2 < s; ++i2)
    out[o + i2 + 4] = dat[i2];
  return (o + 4 + s) * 8;
};
var wblk = function(dat, out, final, syms, lf, df, eb, li, bs, bl, p) {
  wbits(out, p++, final);
  ++lf[256];
  var _a2 = hTree(lf, 15), dlt = _a2.t, mlb = _a2.l;
  var _b2 = hTree(df, 15), ddt = _b2.t, mdb = _b2.l;
  var _c = lc(dlt), lclt = _c.c, nlc = _c.n;
  var _d = lc(ddt), lcdt = _d.c, ndc = _d.n;
  var lcfreq = new u16(19);
  for (var i2 = 0; i2 < lclt.length; ++i2)
    ++lcfreq[lclt[i2] & 31];
  for (var i2 = 0; i2 < lcdt.length; ++i2)
    ++lcfreq[lcdt[i2] & 31];
  var _e = hTree(lcfreq, 7), lct = _e.t, mlcb = _e.l;
  var nlcc = 19;
  for (; nlcc > 4 && !lct[clim[nlcc - 1]]; --nlcc)
    ;
  var flen = bl + 5 << 3;
  var ftlen = clen(lf, flt) + clen(df, fdt) + eb;
  var dtlen = clen(lf, dlt) + clen(df, ddt) + eb + 14 + 3 * nlcc + clen(lcfreq, lct) + 2 * lcfreq[16] + 3 * lcfreq[17] + 7 * lcfreq[18];
  if (bs >= 0 && flen <= ftlen && flen <= dtlen)
    return wfblk(out, p, dat.subarray(bs, bs + bl));
  var lm, ll, dm, dl;
  wbits(out, p, 1 + (dtlen < ftlen)), p += 2;
  if (dtlen < ftlen) {
    lm = hMap(dlt, mlb, 0), ll = dlt, dm = hMap(ddt, mdb, 0), dl = ddt;
    var llm = hMap(lct, mlcb, 0);
    wbits(out, p, nlc - 257);
    wbits(out, p + 5, ndc - 1);
    wbits(out, p + 10, nlcc - 4);
    p += 14;
    for (var i2 = 0; i2 < nlcc; ++i2)
      wbits(out, p + 3 * i2, lct[clim[i2]]);
    p += 3 * nlcc;
    var lcts = [lclt, lcdt];
    for (var it = 0; it < 2; ++it) {
      var clct = lcts[it];
      for (var i2 = 0; i2 < clct.length; ++i2) {
        var len = clct[i2] & 31;
        wbits(out, p, llm[len]), p += lct[len];
        if (len > 15)
          wbits(out, p, clct[i2] >> 5 & 127), p += clct[i2] >> 12;
      }
    }
  } else {
    lm = flm, ll = flt, dm = fdm, dl = fdt;
  }
  for (var i2 = 0; i2 < li; ++i2) {
    var sym = syms[i2];
    if (sym > 255) {
      var len = sym >> 18 & 31;
      wbits16(out, p, lm[len + 257]), p += ll[len + 257];
      if (len > 7)
        wbits(out, p, sym >> 23 & 31), p += fleb[len];
      var dst = sym & 31;
      wbits16(out, p, dm[dst]), p += dl[dst];
      if (dst > 3)
        wbits16(out, p, sym >> 5 & 8191), p += fdeb[dst];
    } else {
      wbits16(out, p, lm[sym]), p += ll[sym];
    }
  }
  wbits16(out, p, lm[256]);
  return p + ll[256];
};
var deo = /* @__PURE__ */ new i32([65540, 131080, 131088, 131104, 262176, 1048704, 1048832, 2114560, 2117632]);
var et = /* @__PURE__ */ new u8(0);
var dflt = function(dat, lvl, plvl, pre, post, st) {
  var s = st.z || dat.length;
  var o = new u8(pre + s + 5 * (1 + Math.ceil(s / 7e3)) + post);
  var w = o.subarray(pre, o.length - post);
  var lst = st.l;
  var pos = (st.r || 0) & 7;
  if (lvl) {
    if (pos)
      w[0] = st.r >> 3;
    var opt = deo[lvl - 1];
    var n = opt >> 13, c = opt & 8191;
    var msk_1 = (1 << plvl) - 1;
    var prev = st.p || new u16(32768), head = st.h || new u16(msk_1 + 1);
    var bs1_1 = Math.ceil(plvl / 3), bs2_1 = 2 * bs1_1;
    var hsh = function(i3) {
      return (dat[i3] ^ dat[i3 + 1] << bs1_1 ^ dat[i3 + 2] << bs2_1) & msk_1;
    };
    var syms = new i32(25e3);
    var lf = new u16(288), df = new u16(32);
    var lc_1 = 0, eb = 0, i2 = st.i || 0, li = 0, wi = st.w || 0, bs = 0;
    for (; i2 + 2 < s; ++i2) {
      var hv = hsh(i2);
      var imod = i2 & 32767, pimod = head[hv];
      prev[imod] = pimod;
      head[hv] = imod;
      if (wi <= i2) {
        var rem = s - i2;
        if ((lc_1 > 7e3 || li > 24576) && (rem > 423 || !lst)) {
          pos = wblk(dat, w, 0, syms, lf, df, eb, li, bs, i2 - bs, pos);
          li = lc_1 = eb = 0, bs = i2;
          for (var j = 0; j < 286; ++j)
            lf[j] = 0;
          for (var j = 0; j < 30; ++j)
            df[j] = 0;
        }
        var l = 2, d = 0, ch_1 = c, dif = imod - pimod & 32767;
        if (rem > 2 && hv == hsh(i2 - dif)) {
          var maxn = Math.min(n, rem) - 1;
          var maxd = Math.min(32767, i2);
          var ml = Math.min(258, rem);
          while (dif <= maxd && --ch_1 && imod != pimod) {
            if (dat[i2 + l] == dat[i2 + l - dif]) {
              var nl = 0;
              for (; nl < ml && dat[i2 + nl] == dat[i2 + nl - dif]; ++nl)
                ;
              if (nl > l) {
                l = nl, d = dif;
                if (nl > maxn)
                  break;
                var mmd = Math.min(dif, nl - 2);
                var md = 0;
                for (var j = 0; j < mmd; ++j) {
                  var ti = i2 - dif + j & 32767;
                  var pti = prev[ti];
                  var cd = ti - pti & 32767;
                  if (cd > md)
                    md = cd, pimod = ti;
                }
              }
            }
            imod = pimod, pimod = prev[imod];
            dif += imod - pimod & 32767;
          }
        }
        if (d) {
          syms[li++] = 268435456 | revfl[l] << 18 | revfd[d];
          var lin = revfl[l] & 31, din = revfd[d] & 31;
          eb += fleb[lin] + fdeb[din];
          ++lf[257 + lin];
          ++df[din];
          wi = i2 + l;
          ++lc_1;
        } else {
          syms[li++] = dat[i2];
          ++lf[dat[i2]];
        }
      }
    }
    for (i2 = Math.max(i2, wi); i2 < s; ++i2) {
      syms[li++] = dat[i2];
      ++lf[dat[i2]];
    }
    pos = wblk(dat, w, lst, syms, lf, df, eb, li, bs, i2 - bs, pos);
    if (!lst) {
      st.r = pos & 7 | w[pos / 8 | 0] << 3;
      pos -= 7;
      st.h = head, st.p = prev, st.i = i2, st.w = wi;
    }
  } else {
    for (var i2 = st.w || 0; i2 < s + lst; i2 += 65535) {
      var e = i2 + 65535;
      if (e >= s) {
        w[pos / 8 | 0] = lst;
        e = s;
      }
      pos = wfblk(w, pos + 1, dat.subarray(i2, e));
    }
    st.i = s;
  }
  return slc(o, 0, pre + shft(pos) + post);
};
var adler = function() {
  var a = 1, b = 0;
  return {
    p: function(d) {
      var n = a, m = b;
      var l = d.length | 0;
      for (var i2 = 0; i2 != l; ) {
        var e = Math.min(i2 + 2655, l);
        for (; i2 < e; ++i2)
          m += n += d[i2];
        n = (n & 65535) + 15 * (n >> 16), m = (m & 65535) + 15 * (m >> 16);
      }
      a = n, b = m;
    },
    d: function() {
      a %= 65521, b %= 65521;
      return (a & 255) << 24 | (a & 65280) << 8 | (b & 255) << 8 | b >> 8;
    }
  };
};
var dopt = function(dat, opt, pre, post, st) {
  if (!st) {
    st = { l: 1 };
    if (opt.dictionary) {
      var dict = opt.dictionary.subarray(-32768);
      var newDat = new u8(dict.length + dat.length);
      newDat.set(dict);
      newDat.set(dat, dict.length);
      dat = newDat;
      st.w = dict.length;
    }
  }
  return dflt(dat, opt.level == null ? 6 : opt.level, opt.mem == null ? st.l ? Math.ceil(Math.max(8, Math.min(13, Math.log(dat.length))) * 1.5) : 20 : 12 + opt.mem, pre, post, st);
};
var wbytes = function(d, b, v) {
  for (; v; ++b)
    d[b] = v, v >>>= 8;
};
var zlh = function(c, o) {
  var lv = o.level, fl2 = lv == 0 ? 0 : lv < 6 ? 1 : lv == 9 ? 3 : 2;
  c[0] = 120, c[1] = fl2 << 6 | (o.dictionary && 32);
  c[1] |= 31 - (c[0] << 8 | c[1]) % 31;
  if (o.dictionary) {
    var h = adler();
    h.p(o.dictionary);
    wbytes(c, 2, h.d());
  }
};
function zlibSync(data, opts) {
  if (!opts)
    opts = {};
  var a = adler();
  a.p(data);
  var d = dopt(data, opts, opts.dictionary ? 6 : 2, 4);
  return zlh(d, opts), wbytes(d, d.length - 4, a.d()), d;
}
var td = typeof TextDecoder != "undefined" && /* @__PURE__ */ new TextDecoder();
var tds = 0;
try {
  td.decode(et, { stream: true });
  tds = 1;
} catch (e) {
}

// node_modules/iobuffer/lib/text.js
function decode(bytes, encoding = "utf8") {
  const decoder = new TextDecoder(encoding);
  return decoder.decode(bytes);
}
var encoder = new TextEncoder();
function encode(str) {
  return encoder.encode(str);
}

// node_modules/iobuffer/lib/iobuffer.js
var defaultByteLength = 1024 * 8;
var hostBigEndian = (() => {
  const array = new Uint8Array(4);
  const view = new Uint32Array(array.buffer);
  return !((view[0] = 1) & array[0]);
})();
var typedArrays = {
  int8: globalThis.Int8Array,
  uint8: globalThis.Uint8Array,
  int16: globalThis.Int16Array,
  uint16: globalThis.Uint16Array,
  int32: globalThis.Int32Array,
  uint32: globalThis.Uint32Array,
  uint64: globalThis.BigUint64Array,
  int64: globalThis.BigInt64Array,
  float32: globalThis.Float32Array,
  float64: globalThis.Float64Array
};
var IOBuffer = class _IOBuffer {
  /**
   * Reference to the internal ArrayBuffer object.
   */
  buffer;
  /**
   * Byte length of the internal ArrayBuffer.
   */
  byteLength;
  /**
   * Byte offset of the internal ArrayBuffer.
   */
  byteOffset;
  /**
   * Byte length of the internal ArrayBuffer.
   */
  length;
  /**
   * The current offset of the buffer's pointer.
   */
  offset;
  lastWrittenByte;
  littleEndian;
  _data;
  _mark;
  _marks;
  /**
   * Create a new IOBuffer.
   * @param data - The data to construct the IOBuffer with.
   * If data is a number, it will be the new buffer's length<br>
   * If data is `undefined`, the buffer will be initialized with a default length of 8Kb<br>
   * If data is an ArrayBuffer, SharedArrayBuffer, an ArrayBufferView (Typed Array), an IOBuffer instance,
   * or a Node.js Buffer, a view will be created over the underlying ArrayBuffer.
   * @param options - An object for the options.
   * @returns A new IOBuffer instance.
   */
  constructor(data = defaultByteLength, options = {}) {
    let dataIsGiven = false;
    if (typeof data === "number") {
      data = new ArrayBuffer(data);
    } else {
      dataIsGiven = true;
      this.lastWrittenByte = data.byteLength;
    }
    const offset = options.offset ? options.offset >>> 0 : 0;
    const byteLength = data.byteLength - offset;
    let dvOffset = offset;
    if (ArrayBuffer.isView(data) || data instanceof _IOBuffer) {
      if (data.byteLength !== data.buffer.byteLength) {
        dvOffset = data.byteOffset + offset;
      }
      data = data.buffer;
    }
    if (dataIsGiven) {
      this.lastWrittenByte = byteLength;
    } else {
      this.lastWrittenByte = 0;
    }
    this.buffer = data;
    this.length = byteLength;
    this.byteLength = byteLength;
    this.byteOffset = dvOffset;
    this.offset = 0;
    this.littleEndian = true;
    this._data = new DataView(this.buffer, dvOffset, byteLength);
    this._mark = 0;
    this._marks = [];
  }
  /**
   * Checks if the memory allocated to the buffer is sufficient to store more
   * bytes after the offset.
   * @param byteLength - The needed memory in bytes.
   * @returns `true` if there is sufficient space and `false` otherwise.
   */
  available(byteLength = 1) {
    return this.offset + byteLength <= this.length;
  }
  /**
   * Check if little-endian mode is used for reading and writing multi-byte
   * values.
   * @returns `true` if little-endian mode is used, `false` otherwise.
   */
  isLittleEndian() {
    return this.littleEndian;
  }
  /**
   * Set little-endian mode for reading and writing multi-byte values.
   * @returns This.
   */
  setLittleEndian() {
    this.littleEndian = true;
    return this;
  }
  /**
   * Check if big-endian mode is used for reading and writing multi-byte values.
   * @returns `true` if big-endian mode is used, `false` otherwise.
   */
  isBigEndian() {
    return !this.littleEndian;
  }
  /**
   * Switches to big-endian mode for reading and writing multi-byte values.
   * @returns This.
   */
  setBigEndian() {
    this.littleEndian = false;
    return this;
  }
  /**
   * Move the pointer n bytes forward.
   * @param n - Number of bytes to skip.
   * @returns This.
   */
  skip(n = 1) {
    this.offset += n;
    return this;
  }
  /**
   * Move the pointer n bytes backward.
   * @param n - Number of bytes to move back.
   * @returns This.
   */
  back(n = 1) {
    this.offset -= n;
    return this;
  }
  /**
   * Move the pointer to the given offset.
   * @param offset - The offset to move to.
   * @returns This.
   */
  seek(offset) {
    this.offset = offset;
    return this;
  }
  /**
   * Store the current pointer offset.
   * @see {@link IOBuffer#reset}
   * @returns This.
   */
  mark() {
    this._mark = this.offset;
    return this;
  }
  /**
   * Move the pointer back to the last pointer offset set by mark.
   * @see {@link IOBuffer#mark}
   * @returns This.
   */
  reset() {
    this.offset = this._mark;
    return this;
  }
  /**
   * Push the current pointer offset to the mark stack.
   * @see {@link IOBuffer#popMark}
   * @returns This.
   */
  pushMark() {
    this._marks.push(this.offset);
    return this;
  }
  /**
   * Pop the last pointer offset from the mark stack, and set the current
   * pointer offset to the popped value.
   * @see {@link IOBuffer#pushMark}
   * @returns This.
   */
  popMark() {
    const offset = this._marks.pop();
    if (offset === void 0) {
      throw new Error("Mark stack empty");
    }
    this.seek(offset);
    return this;
  }
  /**
   * Move the pointer offset back to 0.
   * @returns This.
   */
  rewind() {
    this.offset = 0;
    return this;
  }
  /**
   * Make sure the buffer has sufficient memory to write a given byteLength at
   * the current pointer offset.
   * If the buffer's memory is insufficient, this method will create a new
   * buffer (a copy) with a length that is twice (byteLength + current offset).
   * @param byteLength - The needed memory in bytes.
   * @returns This.
   */
  ensureAvailable(byteLength = 1) {
    if (!this.available(byteLength)) {
      const lengthNeeded = this.offset + byteLength;
      const newLength = lengthNeeded * 2;
      const newArray = new Uint8Array(newLength);
      newArray.set(new Uint8Array(this.buffer));
      this.buffer = newArray.buffer;
      this.length = newLength;
      this.byteLength = newLength;
      this._data = new DataView(this.buffer);
    }
    return this;
  }
  /**
   * Read a byte and return false if the byte's value is 0, or true otherwise.
   * Moves pointer forward by one byte.
   * @returns The read boolean.
   */
  readBoolean() {
    return this.readUint8() !== 0;
  }
  /**
   * Read a signed 8-bit integer and move pointer forward by 1 byte.
   * @returns The read byte.
   */
  readInt8() {
    return this._data.getInt8(this.offset++);
  }
  /**
   * Read an unsigned 8-bit integer and move pointer forward by 1 byte.
   * @returns The read byte.
   */
  readUint8() {
    return this._data.getUint8(this.offset++);
  }
  /**
   * Alias for {@link IOBuffer#readUint8}.
   * @returns The read byte.
   */
  readByte() {
    return this.readUint8();
  }
  /**
   * Read `n` bytes and move pointer forward by `n` bytes.
   * @param n - Number of bytes to read.
   * @returns The read bytes.
   */
  readBytes(n = 1) {
    return this.readArray(n, "uint8");
  }
  /**
   * Creates an array of corresponding to the type `type` and size `size`.
   * For example, type `uint8` will create a `Uint8Array`.
   * @param size - size of the resulting array
   * @param type - number type of elements to read
   * @returns The read array.
   */
  readArray(size, type) {
    const bytes = typedArrays[type].BYTES_PER_ELEMENT * size;
    const offset = this.byteOffset + this.offset;
    const slice = this.buffer.slice(offset, offset + bytes);
    if (this.littleEndian === hostBigEndian && type !== "uint8" && type !== "int8") {
      const slice2 = new Uint8Array(this.buffer.slice(offset, offset + bytes));
      slice2.reverse();
      const returnArray2 = new typedArrays[type](slice2.buffer);
      this.offset += bytes;
      returnArray2.reverse();
      return returnArray2;
    }
    const returnArray = new typedArrays[type](slice);
    this.offset += bytes;
    return returnArray;
  }
  /**
   * Read a 16-bit signed integer and move pointer forward by 2 bytes.
   * @returns The read value.
   */
  readInt16() {
    const value = this._data.getInt16(this.offset, this.littleEndian);
    this.offset += 2;
    return value;
  }
  /**
   * Read a 16-bit unsigned integer and move pointer forward by 2 bytes.
   * @returns The read value.
   */
  readUint16() {
    const value = this._data.getUint16(this.offset, this.littleEndian);
    this.offset += 2;
    return value;
  }
  /**
   * Read a 32-bit signed integer and move pointer forward by 4 bytes.
   * @returns The read value.
   */
  readInt32() {
    const value = this._data.getInt32(this.offset, this.littleEndian);
    this.offset += 4;
    return value;
  }
  /**
   * Read a 32-bit unsigned integer and move pointer forward by 4 bytes.
   * @returns The read value.
   */
  readUint32() {
    const value = this._data.getUint32(this.offset, this.littleEndian);
    this.offset += 4;
    return value;
  }
  /**
   * Read a 32-bit floating number and move pointer forward by 4 bytes.
   * @returns The read value.
   */
  readFloat32() {
    const value = this._data.getFloat32(this.offset, this.littleEndian);
    this.offset += 4;
    return value;
  }
  /**
   * Read a 64-bit floating number and move pointer forward by 8 bytes.
   * @returns The read value.
   */
  readFloat64() {
    const value = this._data.getFloat64(this.offset, this.littleEndian);
    this.offset += 8;
    return value;
  }
  /**
   * Read a 64-bit signed integer number and move pointer forward by 8 bytes.
   * @returns The read value.
   */
  readBigInt64() {
    const value = this._data.getBigInt64(this.offset, this.littleEndian);
    this.offset += 8;
    return value;
  }
  /**
   * Read a 64-bit unsigned integer number and move pointer forward by 8 bytes.
   * @returns The read value.
   */
  readBigUint64() {
    const value = this._data.getBigUint64(this.offset, this.littleEndian);
    this.offset += 8;
    return value;
  }
  /**
   * Read a 1-byte ASCII character and move pointer forward by 1 byte.
   * @returns The read character.
   */
  readChar() {
    return String.fromCharCode(this.readInt8());
  }
  /**
   * Read `n` 1-byte ASCII characters and move pointer forward by `n` bytes.
   * @param n - Number of characters to read.
   * @returns The read characters.
   */
  readChars(n = 1) {
    let result = "";
    for (let i2 = 0; i2 < n; i2++) {
      result += this.readChar();
    }
    return result;
  }
  /**
   * Read the next `n` bytes, return a UTF-8 decoded string and move pointer
   * forward by `n` bytes.
   * @param n - Number of bytes to read.
   * @returns The decoded string.
   */
  readUtf8(n = 1) {
    return decode(this.readBytes(n));
  }
  /**
   * Read the next `n` bytes, return a string decoded with `encoding` and move pointer
   * forward by `n` bytes.
   * If no encoding is passed, the function is equivalent to @see {@link IOBuffer#readUtf8}
   * @param n - Number of bytes to read.
   * @param encoding - The encoding to use. Default is 'utf8'.
   * @returns The decoded string.
   */
  decodeText(n = 1, encoding = "utf8") {
    return decode(this.readBytes(n), encoding);
  }
  /**
   * Write 0xff if the passed value is truthy, 0x00 otherwise and move pointer
   * forward by 1 byte.
   * @param value - The value to write.
   * @returns This.
   */
  writeBoolean(value) {
    this.writeUint8(value ? 255 : 0);
    return this;
  }
  /**
   * Write `value` as an 8-bit signed integer and move pointer forward by 1 byte.
   * @param value - The value to write.
   * @returns This.
   */
  writeInt8(value) {
    this.ensureAvailable(1);
    this._data.setInt8(this.offset++, value);
    this._updateLastWrittenByte();
    return this;
  }
  /**
   * Write `value` as an 8-bit unsigned integer and move pointer forward by 1
   * byte.
   * @param value - The value to write.
   * @returns This.
   */
  writeUint8(value) {
    this.ensureAvailable(1);
    this._data.setUint8(this.offset++, value);
    this._updateLastWrittenByte();
    return this;
  }
  /**
   * An alias for {@link IOBuffer#writeUint8}.
   * @param value - The value to write.
   * @returns This.
   */
  writeByte(value) {
    return this.writeUint8(value);
  }
  /**
   * Write all elements of `bytes` as uint8 values and move pointer forward by
   * `bytes.length` bytes.
   * @param bytes - The array of bytes to write.
   * @returns This.
   */
  writeBytes(bytes) {
    this.ensureAvailable(bytes.length);
    for (let i2 = 0; i2 < bytes.length; i2++) {
      this._data.setUint8(this.offset++, bytes[i2]);
    }
    this._updateLastWrittenByte();
    return this;
  }
  /**
   * Write `value` as a 16-bit signed integer and move pointer forward by 2
   * bytes.
   * @param value - The value to write.
   * @returns This.
   */
  writeInt16(value) {
    this.ensureAvailable(2);
    this._data.setInt16(this.offset, value, this.littleEndian);
    this.offset += 2;
    this._updateLastWrittenByte();
    return this;
  }
  /**
   * Write `value` as a 16-bit unsigned integer and move pointer forward by 2
   * bytes.
   * @param value - The value to write.
   * @returns This.
   */
  writeUint16(value) {
    this.ensureAvailable(2);
    this._data.setUint16(this.offset, value, this.littleEndian);
    this.offset += 2;
    this._updateLastWrittenByte();
    return this;
  }
  /**
   * Write `value` as a 32-bit signed integer and move pointer forward by 4
   * bytes.
   * @param value - The value to write.
   * @returns This.
   */
  writeInt32(value) {
    this.ensureAvailable(4);
    this._data.setInt32(this.offset, value, this.littleEndian);
    this.offset += 4;
    this._updateLastWrittenByte();
    return this;
  }
  /**
   * Write `value` as a 32-bit unsigned integer and move pointer forward by 4
   * bytes.
   * @param value - The value to write.
   * @returns This.
   */
  writeUint32(value) {
    this.ensureAvailable(4);
    this._data.setUint32(this.offset, value, this.littleEndian);
    this.offset += 4;
    this._updateLastWrittenByte();
    return this;
  }
  /**
   * Write `value` as a 32-bit floating number and move pointer forward by 4
   * bytes.
   * @param value - The value to write.
   * @returns This.
   */
  writeFloat32(value) {
    this.ensureAvailable(4);
    this._data.setFloat32(this.offset, value, this.littleEndian);
    this.offset += 4;
    this._updateLastWrittenByte();
    return this;
  }
  /**
   * Write `value` as a 64-bit floating number and move pointer forward by 8
   * bytes.
   * @param value - The value to write.
   * @returns This.
   */
  writeFloat64(value) {
    this.ensureAvailable(8);
    this._data.setFloat64(this.offset, value, this.littleEndian);
    this.offset += 8;
    this._updateLastWrittenByte();
    return this;
  }
  /**
   * Write `value` as a 64-bit signed bigint and move pointer forward by 8
   * bytes.
   * @param value - The value to write.
   * @returns This.
   */
  writeBigInt64(value) {
    this.ensureAvailable(8);
    this._data.setBigInt64(this.offset, value, this.littleEndian);
    this.offset += 8;
    this._updateLastWrittenByte();
    return this;
  }
  /**
   * Write `value` as a 64-bit unsigned bigint and move pointer forward by 8
   * bytes.
   * @param value - The value to write.
   * @returns This.
   */
  writeBigUint64(value) {
    this.ensureAvailable(8);
    this._data.setBigUint64(this.offset, value, this.littleEndian);
    this.offset += 8;
    this._updateLastWrittenByte();
    return this;
  }
  /**
   * Write the charCode of `str`'s first character as an 8-bit unsigned integer
   * and move pointer forward by 1 byte.
   * @param str - The character to write.
   * @returns This.
   */
  writeChar(str) {
    return this.writeUint8(str.charCodeAt(0));
  }
  /**
   * Write the charCodes of all `str`'s characters as 8-bit unsigned integers
   * and move pointer forward by `str.length` bytes.
   * @param str - The characters to write.
   * @returns This.
   */
  writeChars(str) {
    for (let i2 = 0; i2 < str.length; i2++) {
      this.writeUint8(str.charCodeAt(i2));
    }
    return this;
  }
  /**
   * UTF-8 encode and write `str` to the current pointer offset and move pointer
   * forward according to the encoded length.
   * @param str - The string to write.
   * @returns This.
   */
  writeUtf8(str) {
    return this.writeBytes(encode(str));
  }
  /**
   * Export a Uint8Array view of the internal buffer.
   * The view starts at the byte offset and its length
   * is calculated to stop at the last written byte or the original length.
   * @returns A new Uint8Array view.
   */
  toArray() {
    return new Uint8Array(this.buffer, this.byteOffset, this.lastWrittenByte);
  }
  /**
   *  Get the total number of bytes written so far, regardless of the current offset.
   * @returns - Total number of bytes.
   */
  getWrittenByteLength() {
    return this.lastWrittenByte - this.byteOffset;
  }
  /**
   * Update the last written byte offset
   * @private
   */
  _updateLastWrittenByte() {
    if (this.offset > this.lastWrittenByte) {
      this.lastWrittenByte = this.offset;
    }
  }
};

// node_modules/fast-png/lib/helpers/crc.js
var crcTable = [];
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) {
    if (c & 1) {
      c = 3988292384 ^ c >>> 1;
    } else {
      c = c >>> 1;
    }
  }
  crcTable[n] = c;
}
var initialCrc = 4294967295;
function updateCrc(currentCrc, data, length) {
  let c = currentCrc;
  for (let n = 0; n < length; n++) {
    c = crcTable[(c ^ data[n]) & 255] ^ c >>> 8;
  }
  return c;
}
function crc(data, length) {
  return (updateCrc(initialCrc, data, length) ^ initialCrc) >>> 0;
}
function writeCrc(buffer, length) {
  buffer.writeUint32(crc(new Uint8Array(buffer.buffer, buffer.byteOffset + buffer.offset - length, length), length));
}

// node_modules/fast-png/lib/helpers/decode_interlace_adam7.js
var uint16 = new Uint16Array([255]);
var uint8 = new Uint8Array(uint16.buffer);
var osIsLittleEndian = uint8[0] === 255;

// node_modules/fast-png/lib/helpers/decode_interlace_null.js
var uint162 = new Uint16Array([255]);
var uint82 = new Uint8Array(uint162.buffer);
var osIsLittleEndian2 = uint82[0] === 255;
var empty = new Uint8Array(0);

// node_modules/fast-png/lib/helpers/signature.js
var pngSignature = Uint8Array.of(137, 80, 78, 71, 13, 10, 26, 10);
function writeSignature(buffer) {
  buffer.writeBytes(pngSignature);
}

// node_modules/fast-png/lib/helpers/text.js
var textChunkName = "tEXt";
var NULL = 0;
var latin1Decoder = new TextDecoder("latin1");
function validateKeyword(keyword) {
  validateLatin1(keyword);
  if (keyword.length === 0 || keyword.length > 79) {
    throw new Error("keyword length must be between 1 and 79");
  }
}
var latin1Regex = /^[\u0000-\u00FF]*$/;
function validateLatin1(text) {
  if (!latin1Regex.test(text)) {
    throw new Error("invalid latin1 text");
  }
}
function encodetEXt(buffer, keyword, text) {
  validateKeyword(keyword);
  validateLatin1(text);
  const length = keyword.length + 1 + text.length;
  buffer.writeUint32(length);
  buffer.writeChars(textChunkName);
  buffer.writeChars(keyword);
  buffer.writeByte(NULL);
  buffer.writeChars(text);
  writeCrc(buffer, length + 4);
}

// node_modules/fast-png/lib/internal_types.js
var ColorType = {
  UNKNOWN: -1,
  GREYSCALE: 0,
  TRUECOLOUR: 2,
  INDEXED_COLOUR: 3,
  GREYSCALE_ALPHA: 4,
  TRUECOLOUR_ALPHA: 6
};
var CompressionMethod = {
  UNKNOWN: -1,
  DEFLATE: 0
};
var FilterMethod = {
  UNKNOWN: -1,
  ADAPTIVE: 0
};
var InterlaceMethod = {
  UNKNOWN: -1,
  NO_INTERLACE: 0,
  ADAM7: 1
};

// node_modules/fast-png/lib/png_encoder.js
var defaultZlibOptions = {
  level: 3
};
var PngEncoder = class extends IOBuffer {
  _png;
  _zlibOptions;
  _colorType;
  _interlaceMethod;
  constructor(data, options = {}) {
    super();
    this._colorType = ColorType.UNKNOWN;
    this._zlibOptions = { ...defaultZlibOptions, ...options.zlib };
    this._png = this._checkData(data);
    this._interlaceMethod = (options.interlace === "Adam7" ? InterlaceMethod.ADAM7 : InterlaceMethod.NO_INTERLACE) ?? InterlaceMethod.NO_INTERLACE;
    this.setBigEndian();
  }
  encode() {
    writeSignature(this);
    this.encodeIHDR();
    if (this._png.palette) {
      this.encodePLTE();
      if (this._png.palette[0].length === 4) {
        this.encodeTRNS();
      }
    }
    this.encodeData();
    if (this._png.text) {
      for (const [keyword, text] of Object.entries(this._png.text)) {
        encodetEXt(this, keyword, text);
      }
    }
    this.encodeIEND();
    return this.toArray();
  }
  // https://www.w3.org/TR/PNG/#11IHDR
  encodeIHDR() {
    this.writeUint32(13);
    this.writeChars("IHDR");
    this.writeUint32(this._png.width);
    this.writeUint32(this._png.height);
    this.writeByte(this._png.depth);
    this.writeByte(this._colorType);
    this.writeByte(CompressionMethod.DEFLATE);
    this.writeByte(FilterMethod.ADAPTIVE);
    this.writeByte(this._interlaceMethod);
    writeCrc(this, 17);
  }
  // https://www.w3.org/TR/PNG/#11IEND
  encodeIEND() {
    this.writeUint32(0);
    this.writeChars("IEND");
    writeCrc(this, 4);
  }
  encodePLTE() {
    const paletteLength = this._png.palette?.length * 3;
    this.writeUint32(paletteLength);
    this.writeChars("PLTE");
    for (const color of this._png.palette) {
      this.writeByte(color[0]);
      this.writeByte(color[1]);
      this.writeByte(color[2]);
    }
    writeCrc(this, 4 + paletteLength);
  }
  encodeTRNS() {
    const alpha = this._png.palette.filter((color) => {
      return color.at(-1) !== 255;
    });
    this.writeUint32(alpha.length);
    this.writeChars("tRNS");
    for (const el of alpha) {
      this.writeByte(el.at(-1));
    }
    writeCrc(this, 4 + alpha.length);
  }
  // https://www.w3.org/TR/PNG/#11IDAT
  encodeIDAT(data) {
    this.writeUint32(data.length);
    this.writeChars("IDAT");
    this.writeBytes(data);
    writeCrc(this, data.length + 4);
  }
  encodeData() {
    const { width, height, channels, depth, data } = this._png;
    const slotsPerLine = depth <= 8 ? Math.ceil(width * depth / 8) * channels : Math.ceil(width * depth / 8 * channels / 2);
    const newData = new IOBuffer().setBigEndian();
    let offset = 0;
    if (this._interlaceMethod === InterlaceMethod.NO_INTERLACE) {
      for (let i2 = 0; i2 < height; i2++) {
        newData.writeByte(0);
        if (depth === 16) {
          offset = writeDataUint16(data, newData, slotsPerLine, offset);
        } else {
          offset = writeDataBytes(data, newData, slotsPerLine, offset);
        }
      }
    } else if (this._interlaceMethod === InterlaceMethod.ADAM7) {
      offset = writeDataInterlaced(this._png, data, newData, offset);
    }
    const buffer = newData.toArray();
    const compressed = zlibSync(buffer, this._zlibOptions);
    this.encodeIDAT(compressed);
  }
  _checkData(data) {
    const { colorType, channels, depth } = getColorType(data, data.palette);
    const png2 = {
      width: checkInteger(data.width, "width"),
      height: checkInteger(data.height, "height"),
      channels,
      data: data.data,
      depth,
      text: data.text,
      palette: data.palette
    };
    this._colorType = colorType;
    const expectedSize = depth < 8 ? Math.ceil(png2.width * depth / 8) * png2.height * channels : png2.width * png2.height * channels;
    if (png2.data.length !== expectedSize) {
      throw new RangeError(`wrong data size. Found ${png2.data.length}, expected ${expectedSize}`);
    }
    return png2;
  }
};
function checkInteger(value, name) {
  if (Number.isInteger(value) && value > 0) {
    return value;
  }
  throw new TypeError(`${name} must be a positive integer`);
}
function getColorType(data, palette) {
  const { channels = 4, depth = 8 } = data;
  if (channels !== 4 && channels !== 3 && channels !== 2 && channels !== 1) {
    throw new RangeError(`unsupported number of channels: ${channels}`);
  }
  const returnValue = {
    channels,
    depth,
    colorType: ColorType.UNKNOWN
  };
  switch (channels) {
    case 4:
      returnValue.colorType = ColorType.TRUECOLOUR_ALPHA;
      break;
    case 3:
      returnValue.colorType = ColorType.TRUECOLOUR;
      break;
    case 1:
      if (palette) {
        returnValue.colorType = ColorType.INDEXED_COLOUR;
      } else {
        returnValue.colorType = ColorType.GREYSCALE;
      }
      break;
    case 2:
      returnValue.colorType = ColorType.GREYSCALE_ALPHA;
      break;
    default:
      throw new Error("unsupported number of channels");
  }
  return returnValue;
}
function writeDataBytes(data, newData, slotsPerLine, offset) {
  for (let j = 0; j < slotsPerLine; j++) {
    newData.writeByte(data[offset++]);
  }
  return offset;
}
function writeDataInterlaced(imageData, data, newData, offset) {
  const passes = [
    { x: 0, y: 0, xStep: 8, yStep: 8 },
    { x: 4, y: 0, xStep: 8, yStep: 8 },
    { x: 0, y: 4, xStep: 4, yStep: 8 },
    { x: 2, y: 0, xStep: 4, yStep: 4 },
    { x: 0, y: 2, xStep: 2, yStep: 4 },
    { x: 1, y: 0, xStep: 2, yStep: 2 },
    { x: 0, y: 1, xStep: 1, yStep: 2 }
  ];
  const { width, height, channels, depth } = imageData;
  let pixelSize;
  if (depth === 16) {
    pixelSize = channels * depth / 8 / 2;
  } else {
    pixelSize = channels * depth / 8;
  }
  for (let passIndex = 0; passIndex < 7; passIndex++) {
    const pass = passes[passIndex];
    const passWidth = Math.floor((width - pass.x + pass.xStep - 1) / pass.xStep);
    const passHeight = Math.floor((height - pass.y + pass.yStep - 1) / pass.yStep);
    if (passWidth <= 0 || passHeight <= 0)
      continue;
    const passLineBytes = passWidth * pixelSize;
    for (let y = 0; y < passHeight; y++) {
      const imageY = pass.y + y * pass.yStep;
      const rawScanline = depth <= 8 ? new Uint8Array(passLineBytes) : new Uint16Array(passLineBytes);
      let rawOffset = 0;
      for (let x2 = 0; x2 < passWidth; x2++) {
        const imageX = pass.x + x2 * pass.xStep;
        if (imageX < width && imageY < height) {
          const srcPos = (imageY * width + imageX) * pixelSize;
          for (let i2 = 0; i2 < pixelSize; i2++) {
            rawScanline[rawOffset++] = data[srcPos + i2];
          }
        }
      }
      newData.writeByte(0);
      if (depth === 8) {
        newData.writeBytes(rawScanline);
      } else if (depth === 16) {
        for (const value of rawScanline) {
          newData.writeByte(value >> 8 & 255);
          newData.writeByte(value & 255);
        }
      }
    }
  }
  return offset;
}
function writeDataUint16(data, newData, slotsPerLine, offset) {
  for (let j = 0; j < slotsPerLine; j++) {
    newData.writeUint16(data[offset++]);
  }
  return offset;
}

// node_modules/fast-png/lib/index.js
function encodePng(png2, options) {
  const encoder2 = new PngEncoder(png2, options);
  return encoder2.encode();
}

// sim/robot/palette.ts
var COLORS = {
  table: [205, 190, 155],
  /** Outside the workspace (only the wrist camera sees it). */
  wall: [40, 40, 48],
  occluder: [128, 128, 128],
  /** Gripper open: white; closed: black. */
  gripperOpen: [255, 255, 255],
  gripperClosed: [16, 16, 16],
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 90, 230],
  yellow: [235, 200, 30],
  cyan: [40, 200, 210],
  orange: [240, 130, 30],
  /** Hidden-target marker. */
  magenta: [220, 40, 220],
  /** Goal pad (pick-place). */
  pad: [160, 230, 160]
};
function distractorColors(...reserved) {
  const all = [
    COLORS.red,
    COLORS.green,
    COLORS.blue,
    COLORS.yellow,
    COLORS.cyan,
    COLORS.orange
  ];
  return all.filter((c) => !reserved.includes(c));
}

// sim/robot/render.ts
var TOP_CAMERA = { name: "top", width: 32, height: 32, fieldM: 1, follow: false };
var WRIST_CAMERA = {
  name: "wrist",
  width: 16,
  height: 16,
  fieldM: 0.5,
  follow: true
};
var DEFAULT_CAMERAS = [TOP_CAMERA, WRIST_CAMERA];
function itemLayer(item, color = item.color) {
  const { x: cx, y: cy, sizeM: s } = item;
  const hit = item.shape === "disc" ? (x2, y) => (x2 - cx) ** 2 + (y - cy) ** 2 <= s * s : (x2, y) => Math.abs(x2 - cx) <= s && Math.abs(y - cy) <= s;
  return { color, hit };
}
function layers(world) {
  const g = world.gripper;
  const grip = g.grip === 1 ? COLORS.gripperClosed : COLORS.gripperOpen;
  const gripper = itemLayer({ shape: "disc", color: grip, x: g.x, y: g.y, sizeM: GRIPPER_RADIUS_M });
  const held = g.held >= 0 ? [itemLayer(world.objects[g.held])] : [];
  const covers = world.occluders.map((r) => ({
    color: COLORS.occluder,
    hit: (x2, y) => x2 >= r.x0 && x2 <= r.x1 && y >= r.y0 && y <= r.y1
  }));
  const onTable = world.objects.filter((_, i2) => i2 !== g.held).map((o) => itemLayer(o));
  const marks = world.markers.filter((m) => m.visible).map((m) => itemLayer(m));
  return [gripper, ...held, ...covers, ...onTable.reverse(), ...marks.reverse()];
}
function render(world, camera) {
  const { width, height, fieldM } = camera;
  const x0 = (camera.follow ? world.gripper.x : 0.5) - fieldM / 2;
  const y0 = (camera.follow ? world.gripper.y : 0.5) - fieldM / 2;
  const scene = layers(world);
  const data = new Uint8Array(width * height * 3);
  for (let row = 0; row < height; row++) {
    const y = y0 + (row + 0.5) * fieldM / height;
    for (let col = 0; col < width; col++) {
      const x2 = x0 + (col + 0.5) * fieldM / width;
      const inside = x2 >= 0 && x2 <= 1 && y >= 0 && y <= 1;
      const color = scene.find((l) => l.hit(x2, y))?.color ?? (inside ? COLORS.table : COLORS.wall);
      data.set(color, (row * width + col) * 3);
    }
  }
  return { width, height, data };
}
function renderAll(world, cameras = DEFAULT_CAMERAS) {
  return cameras.map((c) => render(world, c));
}

// sim/robot/rng.ts
function mulberry32(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = state + 1831565813 >>> 0;
    let t = state;
    t = Math.imul(t ^ t >>> 15, t | 1);
    t ^= t + Math.imul(t ^ t >>> 7, t | 61);
    return ((t ^ t >>> 14) >>> 0) / 4294967296;
  };
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  return {
    next,
    range: (lo, hi) => lo + (hi - lo) * next(),
    int,
    pick: (items) => items[int(0, items.length - 1)]
  };
}
function streamSeed(seed, label) {
  let h = 2166136261;
  const s = seed >>> 0;
  for (let k = 0; k < 32; k += 8) h = Math.imul(h ^ s >>> k & 255, 16777619);
  for (let i2 = 0; i2 < label.length; i2++) h = Math.imul(h ^ label.charCodeAt(i2), 16777619);
  return h >>> 0;
}
function stream(seed, label) {
  return mulberry32(streamSeed(seed, label));
}

// sim/robot/expert.ts
function seek(from, target, gripOnArrival, gripEnRoute) {
  const dx = target.x - from.x;
  const dy = target.y - from.y;
  const dist = Math.hypot(dx, dy);
  if (dist <= MAX_STEP_M) return { dx: dx / MAX_STEP_M, dy: dy / MAX_STEP_M, grip: gripOnArrival };
  return { dx: dx / dist, dy: dy / dist, grip: gripEnRoute };
}
function expertChunk(episode, world, ticks = CHUNK_TICKS) {
  const sim = cloneWorld(world);
  const knownTick = world.tick;
  const chunk = [];
  for (let k = 0; k < ticks; k++) {
    const action = episode.expert(sim, knownTick);
    chunk.push(action);
    advance(episode, sim, action);
  }
  return chunk;
}

// sim/robot/place.ts
var OBJECT_SIZE_M = 0.06;
var MAX_TRIES = 1e4;
function rectGap(p, r) {
  const dx = Math.max(r.x0 - p.x, 0, p.x - r.x1);
  const dy = Math.max(r.y0 - p.y, 0, p.y - r.y1);
  return Math.hypot(dx, dy);
}
function placeClear(rng, lo, hi, r, { discs = [], rects = [], gapM = 0.02 } = {}, accept = () => true) {
  for (let i2 = 0; i2 < MAX_TRIES; i2++) {
    const p = { x: rng.range(lo, hi), y: rng.range(lo, hi) };
    const clearDiscs = discs.every((d) => distance(p, d) >= d.r + r + gapM);
    const clearRects = rects.every((q) => rectGap(p, q) >= r * Math.SQRT2 + gapM);
    if (clearDiscs && clearRects && accept(p)) return p;
  }
  throw new Error(`placeClear: no spot after ${MAX_TRIES} draws`);
}
function distractors(rng, count, colors, keepOut) {
  const out = [];
  const pool = colors.slice();
  for (let i2 = 0; i2 < count; i2++) {
    const color = pool.splice(rng.int(0, pool.length - 1), 1)[0];
    const shape = rng.pick(["disc", "square"]);
    const discs = [
      ...keepOut.discs ?? [],
      ...out.map((o) => ({ x: o.x, y: o.y, r: OBJECT_SIZE_M }))
    ];
    const p = placeClear(rng, 0.1, 0.9, OBJECT_SIZE_M, { ...keepOut, discs });
    out.push({ name: `distractor${i2}`, shape, color, ...p, sizeM: OBJECT_SIZE_M, graspable: true });
  }
  return out;
}
function randomOccluder(rng) {
  const w = rng.range(0.2, 0.35);
  const h = rng.range(0.15, 0.3);
  const x0 = rng.range(0.05, 0.95 - w);
  const y0 = rng.range(0.05, 0.95 - h);
  return { x0, y0, x1: x0 + w, y1: y0 + h };
}

// sim/robot/tasks/hidden-target.ts
var TARGET_RADIUS_M = 0.06;
var MARKER_SIZE_M = 0.05;
var GAP_TICKS = 8;
var DELAY_TICKS = 3;
var hiddenTarget = {
  name: "hidden-target",
  instruction: "Go to where the magenta marker was and stay there.",
  memory: true,
  gapTicks: GAP_TICKS,
  create(seed, hiddenSeed) {
    const rng = stream(seed, "layout");
    const occluder = randomOccluder(rng);
    const start = placeClear(rng, 0.3, 0.7, 0, { gapM: 0 });
    const cueTicks = rng.int(1, 2);
    const objects = distractors(rng, 2, distractorColors(), {
      discs: [{ ...start, r: 0.05 }],
      rects: [occluder]
    });
    const clear = {
      discs: objects.map((o) => ({ x: o.x, y: o.y, r: OBJECT_SIZE_M })),
      rects: [occluder]
    };
    const target = placeClear(stream(hiddenSeed, "hidden"), 0.1, 0.9, MARKER_SIZE_M, clear, (p) => {
      const d = distance(p, start);
      return d >= 0.2 && d <= 0.38;
    });
    const marker = {
      name: "target",
      shape: "disc",
      color: COLORS.magenta,
      ...target,
      sizeM: MARKER_SIZE_M,
      visible: true
    };
    const world = {
      tick: 0,
      gripper: { ...start, vx: 0, vy: 0, grip: 0, held: -1 },
      objects,
      markers: [marker],
      occluders: [occluder]
    };
    return {
      task: "hidden-target",
      world,
      maxTicks: cueTicks + GAP_TICKS,
      dwellTicks: 2,
      hiddenFromTick: cueTicks,
      holdUntilTick: cueTicks + DELAY_TICKS,
      script: (w) => {
        w.markers[0].visible = w.tick < cueTicks;
      },
      satisfied: (w) => distance(w.gripper, target) <= TARGET_RADIUS_M,
      memoryDependent: (w) => w.tick >= cueTicks,
      // The target is on screen at tick 0, so the expert always knows it; it heads there from the
      // start (the brake voids that until the go tick), so its commands never need a clock.
      expert: (w) => seek(w.gripper, target, 0, 0)
    };
  }
};

// sim/robot/tasks/moved-occluded.ts
var GAP_TICKS2 = 8;
var DELAY_TICKS2 = 3;
var COVER_HALF_W_M = 0.25;
var COVER_HALF_H_M = 0.12;
var SPOT_OFFSET_M = 0.15;
var START_OFFSET_M = COVER_HALF_H_M + OBJECT_SIZE_M + 0.04;
var SLIDER = 0;
var movedOccluded = {
  name: "moved-occluded",
  instruction: "Pick up the blue disc that slid under the grey cover.",
  memory: true,
  gapTicks: GAP_TICKS2,
  create(seed, hiddenSeed) {
    const rng = stream(seed, "layout");
    const toward = rng.pick([1, -1]);
    const cx = rng.range(0.35, 0.65);
    const cy = toward === 1 ? rng.range(0.2, 0.3) : rng.range(0.7, 0.8);
    const cover = {
      x0: cx - COVER_HALF_W_M,
      x1: cx + COVER_HALF_W_M,
      y0: cy - COVER_HALF_H_M,
      y1: cy + COVER_HALF_H_M
    };
    const slideTicks = rng.int(1, 3);
    const hideTick = slideTicks + 1;
    const startY = cy + toward * START_OFFSET_M;
    const gripperStart = {
      x: cx + rng.range(-0.06, 0.06),
      y: cy + toward * rng.range(0.27, 0.32)
    };
    const lane = {
      x0: cover.x0,
      x1: cover.x1,
      y0: Math.min(cy, cy + toward * 0.38),
      y1: Math.max(cy, cy + toward * 0.38)
    };
    const others = distractors(rng, 2, distractorColors(COLORS.blue), {
      discs: [{ ...gripperStart, r: 0.05 }],
      rects: [cover, lane]
    });
    const side = stream(hiddenSeed, "hidden").pick([-1, 1]);
    const spot = { x: cx + side * SPOT_OFFSET_M, y: cy };
    const slider = {
      name: "slider",
      shape: "disc",
      color: COLORS.blue,
      x: cx,
      y: startY,
      sizeM: OBJECT_SIZE_M,
      graspable: false
    };
    const world = {
      tick: 0,
      gripper: { ...gripperStart, vx: 0, vy: 0, grip: 0, held: -1 },
      objects: [slider, ...others],
      markers: [],
      occluders: [cover]
    };
    const script = (w) => {
      const t = w.tick;
      if (t > hideTick) return;
      const o = w.objects[SLIDER];
      if (t === hideTick) Object.assign(o, spot, { graspable: true });
      else Object.assign(o, { x: cx + side * SPOT_OFFSET_M * t / slideTicks, y: startY });
    };
    return {
      task: "moved-occluded",
      world,
      maxTicks: hideTick + GAP_TICKS2,
      dwellTicks: 1,
      hiddenFromTick: hideTick,
      holdUntilTick: hideTick + DELAY_TICKS2,
      script,
      satisfied: (w) => w.gripper.held === SLIDER,
      memoryDependent: (w) => w.tick >= hideTick && w.gripper.held !== SLIDER,
      expert: (w, knownTick) => {
        const g = w.gripper;
        if (g.held === SLIDER) return seek(g, g, 1, 1);
        if (knownTick < 1) return seek(g, g, 0, 0);
        return seek(g, spot, 1, 0);
      }
    };
  }
};

// sim/robot/tasks/pick-place.ts
var PAD_HALF_M = 0.08;
var BOX = 0;
var onPad = (p, pad) => Math.abs(p.x - pad.x) <= PAD_HALF_M && Math.abs(p.y - pad.y) <= PAD_HALF_M;
var pickPlace = {
  name: "pick-place",
  instruction: "Put the blue square on the green pad.",
  memory: false,
  gapTicks: 0,
  create(seed) {
    const rng = stream(seed, "layout");
    const occluder = randomOccluder(rng);
    const start = placeClear(rng, 0.15, 0.85, 0, { gapM: 0 });
    const boxAt = placeClear(rng, 0.1, 0.9, OBJECT_SIZE_M, { rects: [occluder] }, (p) => {
      const d = distance(p, start);
      return d >= 0.15 && d <= 0.75;
    });
    const pad = placeClear(
      rng,
      0.1,
      0.9,
      PAD_HALF_M,
      { rects: [occluder], discs: [{ ...boxAt, r: OBJECT_SIZE_M }] },
      (p) => distance(p, boxAt) >= 0.25 && distance(p, boxAt) <= 0.75
    );
    const box = {
      name: "box",
      shape: "square",
      color: COLORS.blue,
      ...boxAt,
      sizeM: OBJECT_SIZE_M,
      graspable: true
    };
    const padMarker = {
      name: "pad",
      shape: "square",
      color: COLORS.pad,
      ...pad,
      sizeM: PAD_HALF_M,
      visible: true
    };
    const others = distractors(rng, 2, distractorColors(COLORS.blue, COLORS.green), {
      discs: [
        { ...start, r: 0.05 },
        { ...boxAt, r: OBJECT_SIZE_M },
        { ...pad, r: PAD_HALF_M * Math.SQRT2 }
      ],
      rects: [occluder]
    });
    const world = {
      tick: 0,
      gripper: { ...start, vx: 0, vy: 0, grip: 0, held: -1 },
      objects: [box, ...others],
      markers: [padMarker],
      occluders: [occluder]
    };
    return {
      task: "pick-place",
      world,
      maxTicks: 24,
      dwellTicks: 1,
      hiddenFromTick: null,
      holdUntilTick: 0,
      script: () => {
      },
      satisfied: (w) => w.gripper.held !== BOX && onPad(w.objects[BOX], pad),
      memoryDependent: () => false,
      expert: (w) => {
        const g = w.gripper;
        if (g.held === BOX) return seek(g, pad, 0, 1);
        if (onPad(w.objects[BOX], pad)) return seek(g, g, 0, 0);
        return seek(g, w.objects[BOX], 1, 0);
      }
    };
  }
};

// sim/robot/tasks/reach-red.ts
var REACH_RADIUS_M = 0.06;
var RED = 0;
var reachRed = {
  name: "reach-red",
  instruction: "Move the gripper onto the red object and stay there.",
  memory: false,
  gapTicks: 0,
  create(seed) {
    const rng = stream(seed, "layout");
    const occluder = randomOccluder(rng);
    const start = placeClear(rng, 0.15, 0.85, 0, { gapM: 0 });
    const at = placeClear(rng, 0.1, 0.9, OBJECT_SIZE_M, { rects: [occluder] }, (p) => {
      const d = distance(p, start);
      return d >= 0.2 && d <= 0.8;
    });
    const red = {
      name: "red",
      shape: rng.pick(["disc", "square"]),
      color: COLORS.red,
      ...at,
      sizeM: OBJECT_SIZE_M,
      graspable: true
    };
    const others = distractors(rng, 2, distractorColors(COLORS.red), {
      discs: [
        { ...start, r: 0.05 },
        { ...at, r: OBJECT_SIZE_M }
      ],
      rects: [occluder]
    });
    const world = {
      tick: 0,
      gripper: { ...start, vx: 0, vy: 0, grip: 0, held: -1 },
      objects: [red, ...others],
      markers: [],
      occluders: [occluder]
    };
    return {
      task: "reach-red",
      world,
      maxTicks: 12,
      dwellTicks: 2,
      hiddenFromTick: null,
      holdUntilTick: 0,
      script: () => {
      },
      satisfied: (w) => distance(w.gripper, w.objects[RED]) <= REACH_RADIUS_M,
      memoryDependent: () => false,
      expert: (w) => seek(w.gripper, w.objects[RED], 0, 0)
    };
  }
};

// sim/robot/tasks.ts
var TASKS = [hiddenTarget, movedOccluded, reachRed, pickPlace];
var TASK_NAMES = TASKS.map((t) => t.name);
function taskByName(name) {
  const task = TASKS.find((t) => t.name === name);
  if (!task) throw new RangeError(`unknown robot task '${name}' (known: ${TASK_NAMES.join(", ")})`);
  return task;
}

// sim/robot/env.ts
var PROPRIO_SIZE = 5;
function proprio(world) {
  const g = world.gripper;
  return Float32Array.of(g.x, g.y, g.vx, g.vy, g.grip);
}
var RobotEnv = class {
  cameras;
  #episode = null;
  #world = null;
  #metTicks = 0;
  constructor({ cameras = DEFAULT_CAMERAS } = {}) {
    this.cameras = cameras;
  }
  /**
   * Start an episode.
   * @param seed integer; only its low 32 bits matter
   * @throws RangeError for an unknown task
   */
  reset(taskName, seed, { hiddenSeed } = {}) {
    const episode = taskByName(taskName).create(seed, hiddenSeed ?? streamSeed(seed, "hidden-seed"));
    this.#episode = episode;
    this.#world = cloneWorld(episode.world);
    this.#metTicks = episode.satisfied(this.#world) ? 1 : 0;
    return this.#observe();
  }
  /**
   * Execute one action, or the first action of a chunk.
   * @throws Error before `reset`, after `done`, or on an empty chunk
   */
  step(action) {
    const { episode, world } = this;
    if (this.done) throw new Error("episode is done; call reset()");
    const first = Array.isArray(action) ? action[0] : action;
    if (!first) throw new Error("empty action chunk");
    advance(episode, world, first);
    this.#metTicks = episode.satisfied(world) ? this.#metTicks + 1 : 0;
    return { ...this.#observe(), done: this.done, success: this.success };
  }
  /** The current episode (privileged: for experts and tests). @throws Error before `reset` */
  get episode() {
    if (!this.#episode) throw new Error("call reset() first");
    return this.#episode;
  }
  /**
   * The live world (privileged: for experts and tests; do not mutate).
   * @throws Error before `reset`
   */
  get world() {
    if (!this.#world) throw new Error("call reset() first");
    return this.#world;
  }
  get done() {
    return this.world.tick >= this.episode.maxTicks;
  }
  get success() {
    return this.#metTicks >= this.episode.dwellTicks;
  }
  #observe() {
    const { episode, world } = this;
    return {
      frames: renderAll(world, this.cameras),
      proprio: proprio(world),
      instruction: taskByName(episode.task).instruction,
      tick: world.tick,
      memoryDependent: episode.memoryDependent(world)
    };
  }
};

// sim/gui/grid.ts
var CELL_PX = 8;
var GRID_COLS = 16;
var GRID_ROWS = 12;
var SCREEN_WIDTH = GRID_COLS * CELL_PX;
var SCREEN_HEIGHT = GRID_ROWS * CELL_PX;
var GRID_CELLS = GRID_COLS * GRID_ROWS;
function cellRectPx(r) {
  return {
    x: r.col * CELL_PX,
    y: r.row * CELL_PX,
    width: r.cols * CELL_PX,
    height: r.rows * CELL_PX
  };
}
function rectContains(r, x2, y) {
  const px = cellRectPx(r);
  return x2 >= px.x && x2 < px.x + px.width && y >= px.y && y < px.y + px.height;
}
function cellCenter(cell) {
  if (!Number.isInteger(cell) || cell < 0 || cell >= GRID_CELLS)
    throw new RangeError(`cell must be an integer in [0, ${GRID_CELLS}), got ${cell}`);
  const col = cell % GRID_COLS;
  const row = (cell - col) / GRID_COLS;
  return { x: col * CELL_PX + CELL_PX / 2, y: row * CELL_PX + CELL_PX / 2 };
}
function pointToCell(x2, y) {
  if (!(x2 >= 0 && x2 < SCREEN_WIDTH && y >= 0 && y < SCREEN_HEIGHT)) return -1;
  return Math.floor(y / CELL_PX) * GRID_COLS + Math.floor(x2 / CELL_PX);
}
function targetCell(r) {
  return (r.row + Math.floor(r.rows / 2)) * GRID_COLS + r.col + Math.floor(r.cols / 2);
}
function rectsOverlap(r, s, gap = 0) {
  return r.col - gap < s.col + s.cols && s.col < r.col + r.cols + gap && r.row - gap < s.row + s.rows && s.row < r.row + r.rows + gap;
}

// sim/gui/actions.ts
var SCROLL_UP = GRID_CELLS;
var SCROLL_DOWN = GRID_CELLS + 1;
var TYPE = GRID_CELLS + 2;
var DONE = GRID_CELLS + 3;
var ACTION_CLASSES = GRID_CELLS + 4;
function isTypeText(text) {
  return /^[0-9]{4}$/.test(text);
}
function clickCell(cell) {
  const { x: x2, y } = cellCenter(cell);
  return { type: "click", x: x2, y };
}
function encodeAction(action) {
  switch (action.type) {
    case "click": {
      const cell = pointToCell(action.x, action.y);
      if (cell < 0) throw new RangeError(`click (${action.x}, ${action.y}) px is off screen`);
      return { classId: cell, digits: [] };
    }
    case "scroll":
      if (action.dy !== 1 && action.dy !== -1)
        throw new RangeError(`scroll dy must be \xB11, got ${action.dy}`);
      return { classId: action.dy < 0 ? SCROLL_UP : SCROLL_DOWN, digits: [] };
    case "type":
      if (!isTypeText(action.text))
        throw new RangeError(`type text must be 4 digits, got ${action.text}`);
      return { classId: TYPE, digits: [...action.text].map(Number) };
    case "done":
      return { classId: DONE, digits: [] };
  }
}

// sim/gui/png.ts
function framePng(frame) {
  return encodePng({
    width: frame.width,
    height: frame.height,
    data: frame.data,
    channels: 3,
    depth: 8
  });
}

// sim/gui/font.ts
var GLYPH_WIDTH = 5;
var GLYPH_HEIGHT = 7;
var FIRST_CHAR = 32;
var LAST_CHAR = 126;
var GLYPHS = {
  " ": "..... ..... ..... ..... ..... ..... .....",
  "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
  '"': ".#.#. .#.#. ..... ..... ..... ..... .....",
  "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
  $: "..#.. .#### #.#.. .###. ..#.# ####. ..#..",
  "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
  "&": ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#",
  "'": "..#.. ..#.. ..... ..... ..... ..... .....",
  "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
  ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
  "*": "..... ..#.. #.#.# .###. #.#.# ..#.. .....",
  "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
  ",": "..... ..... ..... ..... .##.. ..#.. .#...",
  "-": "..... ..... ..... ##### ..... ..... .....",
  ".": "..... ..... ..... ..... ..... .##.. .##..",
  "/": "..... ....# ...#. ..#.. .#... #.... .....",
  "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
  "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
  "2": ".###. #...# ....# ...#. ..#.. .#... #####",
  "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
  "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
  "5": "##### #.... ####. ....# ....# #...# .###.",
  "6": "..##. .#... #.... ####. #...# #...# .###.",
  "7": "##### ....# ...#. ..#.. .#... .#... .#...",
  "8": ".###. #...# #...# .###. #...# #...# .###.",
  "9": ".###. #...# #...# .#### ....# ...#. .##..",
  ":": "..... .##.. .##.. ..... .##.. .##.. .....",
  ";": "..... .##.. .##.. ..... .##.. ..#.. .#...",
  "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
  "=": "..... ..... ##### ..... ##### ..... .....",
  ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
  "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
  "@": ".###. #...# ....# .##.# #.#.# #.#.# .###.",
  A: ".###. #...# #...# ##### #...# #...# #...#",
  B: "####. #...# #...# ####. #...# #...# ####.",
  C: ".###. #...# #.... #.... #.... #...# .###.",
  D: "###.. #..#. #...# #...# #...# #..#. ###..",
  E: "##### #.... #.... ####. #.... #.... #####",
  F: "##### #.... #.... ####. #.... #.... #....",
  G: ".###. #...# #.... #.### #...# #...# .####",
  H: "#...# #...# #...# ##### #...# #...# #...#",
  I: ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  J: "..### ...#. ...#. ...#. ...#. #..#. .##..",
  K: "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
  L: "#.... #.... #.... #.... #.... #.... #####",
  M: "#...# ##.## #.#.# #.#.# #...# #...# #...#",
  N: "#...# #...# ##..# #.#.# #..## #...# #...#",
  O: ".###. #...# #...# #...# #...# #...# .###.",
  P: "####. #...# #...# ####. #.... #.... #....",
  Q: ".###. #...# #...# #...# #.#.# #..#. .##.#",
  R: "####. #...# #...# ####. #.#.. #..#. #...#",
  S: ".#### #.... #.... .###. ....# ....# ####.",
  T: "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  U: "#...# #...# #...# #...# #...# #...# .###.",
  V: "#...# #...# #...# #...# #...# .#.#. ..#..",
  W: "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
  X: "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
  Y: "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
  Z: "##### ....# ...#. ..#.. .#... #.... #####",
  "[": ".###. .#... .#... .#... .#... .#... .###.",
  "\\": "..... #.... .#... ..#.. ...#. ....# .....",
  "]": ".###. ...#. ...#. ...#. ...#. ...#. .###.",
  "^": "..#.. .#.#. #...# ..... ..... ..... .....",
  _: "..... ..... ..... ..... ..... ..... #####",
  "`": ".#... ..#.. ..... ..... ..... ..... .....",
  a: "..... ..... .###. ....# .#### #...# .####",
  b: "#.... #.... #.##. ##..# #...# #...# ####.",
  c: "..... ..... .###. #.... #.... #...# .###.",
  d: "....# ....# .##.# #..## #...# #...# .####",
  e: "..... ..... .###. #...# ##### #.... .###.",
  f: "..##. .#..# .#... ###.. .#... .#... .#...",
  g: "..... .#### #...# #...# .#### ....# .###.",
  h: "#.... #.... #.##. ##..# #...# #...# #...#",
  i: "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.",
  j: "...#. ..... ..##. ...#. ...#. #..#. .##..",
  k: "#.... #.... #..#. #.#.. ##... #.#.. #..#.",
  l: ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  m: "..... ..... ##.#. #.#.# #.#.# #...# #...#",
  n: "..... ..... #.##. ##..# #...# #...# #...#",
  o: "..... ..... .###. #...# #...# #...# .###.",
  p: "..... ..... ####. #...# ####. #.... #....",
  q: "..... ..... .##.# #..## .#### ....# ....#",
  r: "..... ..... #.##. ##..# #.... #.... #....",
  s: "..... ..... .###. #.... .###. ....# ####.",
  t: ".#... .#... ###.. .#... .#... .#..# ..##.",
  u: "..... ..... #...# #...# #...# #..## .##.#",
  v: "..... ..... #...# #...# #...# .#.#. ..#..",
  w: "..... ..... #...# #...# #.#.# #.#.# .#.#.",
  x: "..... ..... #...# .#.#. ..#.. .#.#. #...#",
  y: "..... ..... #...# #...# .#### ....# .###.",
  z: "..... ..... ##### ...#. ..#.. .#... #####",
  "{": "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.",
  "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  "}": ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...",
  "~": "..... ..... .#... #.#.# ...#. ..... ....."
};
var TABLE = [];
for (let code = FIRST_CHAR; code <= LAST_CHAR; code++) {
  const rows = GLYPHS[String.fromCharCode(code)]?.split(" ");
  if (rows?.length !== GLYPH_HEIGHT || rows.some((r) => r.length !== GLYPH_WIDTH))
    throw new Error(`font: glyph ${code} is missing or not 5\xD77`);
  TABLE[code] = Uint8Array.from(rows.join(""), (c) => c === "#" ? 1 : 0);
}
function glyph(char) {
  const code = char.charCodeAt(0);
  return TABLE[code >= FIRST_CHAR && code <= LAST_CHAR ? code : 63];
}

// sim/gui/raster.ts
function glyphClass(char, scale) {
  const code = char.charCodeAt(0);
  if (!(code > 32 && code < 127)) return 0;
  return code - 31 + (scale === 2 ? 95 : 0);
}
function createFrame(width, height, color) {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
    throw new RangeError(`frame size must be positive integers, got ${width}\xD7${height}`);
  const glyphs = new Uint8Array(Math.ceil(height / CELL_PX) * Math.ceil(width / CELL_PX));
  const frame = { width, height, data: new Uint8Array(width * height * 3), glyphs };
  fillRect(frame, 0, 0, width, height, color);
  return frame;
}
function fillRect(f, x2, y, width, height, c) {
  const x0 = Math.max(0, x2);
  const y0 = Math.max(0, y);
  const x1 = Math.min(f.width, x2 + width);
  const y1 = Math.min(f.height, y + height);
  for (let row = y0; row < y1; row++)
    for (let col = x0; col < x1; col++) {
      const i2 = (row * f.width + col) * 3;
      f.data[i2] = c[0];
      f.data[i2 + 1] = c[1];
      f.data[i2 + 2] = c[2];
    }
}
function strokeRect(f, x2, y, width, height, c) {
  fillRect(f, x2, y, width, 1, c);
  fillRect(f, x2, y + height - 1, width, 1, c);
  fillRect(f, x2, y, 1, height, c);
  fillRect(f, x2 + width - 1, y, 1, height, c);
}
function drawText(f, x2, y, text, c, scale = 1) {
  const cols = Math.ceil(f.width / CELL_PX);
  for (let i2 = 0; i2 < text.length; i2++) {
    const bits = glyph(text[i2]);
    const left = x2 + i2 * CELL_PX * scale + scale;
    const cx = Math.floor((x2 + i2 * CELL_PX * scale + CELL_PX / 2 * scale) / CELL_PX);
    const cy = Math.floor((y + CELL_PX / 2 * scale) / CELL_PX);
    const cls = glyphClass(text[i2], scale);
    if (cls && cx >= 0 && cx < cols && cy >= 0 && cy * cols < f.glyphs.length) f.glyphs[cy * cols + cx] = cls;
    for (let gy = 0; gy < GLYPH_HEIGHT; gy++)
      for (let gx = 0; gx < GLYPH_WIDTH; gx++)
        if (bits[gy * GLYPH_WIDTH + gx])
          fillRect(f, left + gx * scale, y + gy * scale, scale, scale, c);
  }
}

// sim/gui/widgets.ts
var LIST_ROW_CELLS = 2;
function visibleRows(list) {
  return Math.floor(list.rect.rows / LIST_ROW_CELLS);
}
function buttonSize(label) {
  return { cols: Math.max(4, label.length + 2), rows: 2 };
}
function button(id, col, row, label) {
  return { kind: "button", id, rect: { col, row, ...buttonSize(label) }, label };
}
function listRowRect(list, i2) {
  const { col, row, cols } = list.rect;
  return { col, row: row + i2 * LIST_ROW_CELLS, cols: cols - 1, rows: LIST_ROW_CELLS };
}
function hitTest(screen, x2, y) {
  for (let w = screen.widgets.length - 1; w >= 0; w--) {
    const widget = screen.widgets[w];
    if (widget.kind === "button" || widget.kind === "field") {
      if (rectContains(widget.rect, x2, y)) return { id: widget.id };
    } else if (widget.kind === "list") {
      if (!rectContains(widget.rect, x2, y)) continue;
      for (let i2 = 0; i2 < visibleRows(widget); i2++) {
        const item = widget.scroll + i2;
        if (item < widget.items.length && rectContains(listRowRect(widget, i2), x2, y))
          return { id: widget.id, item };
      }
      return null;
    }
  }
  return null;
}
function findWidget(screen, id) {
  return screen.widgets.find((w) => "id" in w && w.id === id);
}

// sim/gui/render.ts
var THEME = {
  background: [232, 232, 228],
  titleBar: [36, 56, 110],
  titleText: [255, 255, 255],
  ink: [16, 16, 16],
  buttonFill: [196, 212, 240],
  buttonEdge: [36, 56, 110],
  fieldFill: [255, 255, 255],
  fieldEdge: [16, 16, 16],
  panelFill: [250, 244, 214],
  panelEdge: [96, 96, 96],
  toggleOn: [52, 160, 80],
  toggleOff: [150, 150, 150],
  knob: [255, 255, 255],
  listFill: [255, 255, 255],
  listRule: [190, 190, 190],
  scrollTrack: [214, 214, 214],
  scrollThumb: [90, 90, 90]
};
function renderScreen(screen) {
  const frame = createFrame(SCREEN_WIDTH, SCREEN_HEIGHT, THEME.background);
  fillRect(frame, 0, 0, SCREEN_WIDTH, CELL_PX, THEME.titleBar);
  drawText(frame, 0, 0, screen.title.slice(0, GRID_COLS), THEME.titleText);
  for (const widget of screen.widgets) drawWidget(frame, widget);
  return frame;
}
function drawWidget(frame, w) {
  switch (w.kind) {
    case "text":
      return drawText(frame, w.col * CELL_PX, w.row * CELL_PX, w.text, THEME.ink, w.scale ?? 1);
    case "button":
      return drawButton(frame, w);
    case "field":
      return drawField(frame, w);
    case "toggle":
      return drawToggle(frame, w);
    case "list":
      return drawList(frame, w);
    case "panel": {
      const { x: x2, y, width, height } = cellRectPx(w.rect);
      fillRect(frame, x2, y, width, height, THEME.panelFill);
      return strokeRect(frame, x2, y, width, height, THEME.panelEdge);
    }
  }
}
var labelY = (y, heightPx) => y + (heightPx - CELL_PX) / 2;
function drawButton(frame, b) {
  const { x: x2, y, width, height } = cellRectPx(b.rect);
  fillRect(frame, x2, y, width, height, THEME.buttonFill);
  strokeRect(frame, x2, y, width, height, THEME.buttonEdge);
  const col = b.align === "left" ? 1 : Math.floor((b.rect.cols - b.label.length) / 2);
  drawText(frame, x2 + col * CELL_PX, labelY(y, height), b.label, THEME.ink);
}
function drawField(frame, f) {
  const { x: x2, y, width, height } = cellRectPx(f.rect);
  fillRect(frame, x2, y, width, height, THEME.fieldFill);
  strokeRect(frame, x2, y, width, height, THEME.fieldEdge);
  drawText(frame, x2 + CELL_PX, labelY(y, height), f.value, THEME.ink);
  fillRect(frame, x2 + CELL_PX * (1 + f.value.length) + 1, y + 3, 1, height - 6, THEME.ink);
}
function drawToggle(frame, t) {
  const { x: x2, y, width, height } = cellRectPx(t.rect);
  fillRect(frame, x2, y, width, height, t.on ? THEME.toggleOn : THEME.toggleOff);
  strokeRect(frame, x2, y, width, height, THEME.ink);
  const knob = height - 4;
  fillRect(frame, t.on ? x2 + width - 2 - knob : x2 + 2, y + 2, knob, knob, THEME.knob);
}
function drawList(frame, l) {
  const { x: x2, y, width, height } = cellRectPx(l.rect);
  fillRect(frame, x2, y, width, height, THEME.listFill);
  const rows = visibleRows(l);
  for (let i2 = 0; i2 < rows; i2++) {
    const r = cellRectPx(listRowRect(l, i2));
    if (i2 > 0) fillRect(frame, r.x, r.y, r.width, 1, THEME.listRule);
    const item = l.items[l.scroll + i2];
    if (item !== void 0) drawText(frame, r.x + CELL_PX, labelY(r.y, r.height), item, THEME.ink);
  }
  const trackX = x2 + width - CELL_PX;
  fillRect(frame, trackX, y, CELL_PX, height, THEME.scrollTrack);
  const total = Math.max(l.items.length, rows);
  const thumbTop = Math.round(l.scroll / total * height);
  const thumbHeight = Math.max(4, Math.round(rows / total * height));
  fillRect(frame, trackX + 2, y + thumbTop, CELL_PX - 4, thumbHeight, THEME.scrollThumb);
  strokeRect(frame, x2, y, width, height, THEME.fieldEdge);
}

// sim/gui/stage.ts
var EMPTY_UI = { typed: "", scroll: 0 };

// sim/gui/apps/choice.ts
function choiceStage(name, screen, correctId, memoryDependent = false) {
  const target = findWidget(screen, correctId);
  if (!target || !("id" in target) || target.kind === "list")
    throw new Error(`${name}: no button or field '${correctId}' on screen '${screen.title}'`);
  const expertClick = clickCell(targetCell(target.rect));
  return {
    name,
    initialUi: EMPTY_UI,
    screen: () => screen,
    react(action) {
      if (action.type === "done") return { kind: "fail" };
      if (action.type !== "click") return { kind: "invalid" };
      const hit = hitTest(screen, action.x, action.y);
      if (!hit) return { kind: "invalid" };
      return hit.id === correctId ? { kind: "next" } : { kind: "fail" };
    },
    expert: () => expertClick,
    memoryDependent: () => memoryDependent
  };
}
var DONE_SCREEN = {
  title: "Done",
  widgets: [
    { kind: "text", col: 1, row: 4, text: "Task complete." },
    { kind: "text", col: 1, row: 6, text: "You may stop." }
  ]
};
function finishStage() {
  const done = { type: "done" };
  return {
    name: "finish",
    initialUi: EMPTY_UI,
    screen: () => DONE_SCREEN,
    react: (action) => action.type === "done" ? { kind: "success" } : { kind: "invalid" },
    expert: () => done,
    memoryDependent: () => false
  };
}

// sim/gui/rng.ts
function mulberry322(seed) {
  let state = seed >>> 0;
  return () => {
    state = state + 1831565813 >>> 0;
    let t = state;
    t = Math.imul(t ^ t >>> 15, t | 1);
    t ^= t + Math.imul(t ^ t >>> 7, t | 61);
    return ((t ^ t >>> 14) >>> 0) / 4294967296;
  };
}
function stream2(seed, label) {
  let h = 2166136261;
  const s = seed >>> 0;
  for (let k = 0; k < 32; k += 8) h = Math.imul(h ^ s >>> k & 255, 16777619);
  for (let i2 = 0; i2 < label.length; i2++) h = Math.imul(h ^ label.charCodeAt(i2), 16777619);
  return mulberry322(h);
}
function randInt(rng, lo, hi) {
  return lo + Math.floor(rng() * (hi - lo + 1));
}
function pick(rng, items) {
  return items[randInt(rng, 0, items.length - 1)];
}
function shuffle(rng, items) {
  const out = items.slice();
  for (let i2 = out.length - 1; i2 > 0; i2--) {
    const j = randInt(rng, 0, i2);
    [out[i2], out[j]] = [out[j], out[i2]];
  }
  return out;
}
function sample(rng, items, count) {
  return shuffle(rng, items).slice(0, count);
}

// sim/gui/apps/layout.ts
var TRIES = 32;
var RESTARTS = 32;
function placeRects(rng, sizes, area, gap = 1) {
  const spans = sizes.map(({ cols, rows }) => {
    const maxCol = area.col + area.cols - cols;
    const maxRow = area.row + area.rows - rows;
    if (maxCol < area.col || maxRow < area.row)
      throw new Error(`placeRects: ${cols}\xD7${rows} > area`);
    return { cols, rows, maxCol, maxRow };
  });
  const fits = (r, placed2) => placed2.every((p) => !rectsOverlap(p, r, gap));
  const randomLayout = () => {
    const placed2 = [];
    for (const { cols, rows, maxCol, maxRow } of spans) {
      let found;
      for (let t = 0; t < TRIES && !found; t++) {
        const r = {
          col: randInt(rng, area.col, maxCol),
          row: randInt(rng, area.row, maxRow),
          cols,
          rows
        };
        if (fits(r, placed2)) found = r;
      }
      if (!found) return null;
      placed2.push(found);
    }
    return placed2;
  };
  for (let t = 0; t < RESTARTS; t++) {
    const layout = randomLayout();
    if (layout) return layout;
  }
  const placed = [];
  for (const { cols, rows, maxCol, maxRow } of spans) {
    let found;
    for (let row = area.row; !found && row <= maxRow; row++)
      for (let col = area.col; !found && col <= maxCol; col++)
        if (fits({ col, row, cols, rows }, placed)) found = { col, row, cols, rows };
    if (!found) throw new Error(`placeRects: no room for ${cols}\xD7${rows} cells`);
    placed.push(found);
  }
  return placed;
}

// sim/gui/apps/dialog.ts
function placeButtons(rng, specs, area) {
  const rects = placeRects(
    rng,
    specs.map((s) => buttonSize(s.label)),
    area
  );
  return specs.map((s, i2) => button(s.id, rects[i2].col, rects[i2].row, s.label));
}
function dialogScreen(rng, title, message, buttons) {
  return {
    title,
    widgets: [
      { kind: "panel", rect: { col: 0, row: 2, cols: 16, rows: 10 } },
      { kind: "text", col: 1, row: 3, text: message },
      ...placeButtons(rng, buttons, { col: 1, row: 6, cols: 14, rows: 5 })
    ]
  };
}
function pageScreen(rng, title, texts, next, fromRow = 7) {
  const area = { col: 0, row: fromRow, cols: 16, rows: 12 - fromRow };
  return { title, widgets: [...texts, ...placeButtons(rng, [next], area)] };
}
function textLines(lines, col, row) {
  return lines.map((text, i2) => ({ kind: "text", col, row: row + 2 * i2, text }));
}
function textCol(rng, chars, maxCol = 4) {
  return randInt(rng, 0, Math.max(0, Math.min(maxCol, 16 - chars)));
}

// sim/gui/tasks/words.ts
var split = (words) => words.split(" ");
var APPS = split("Mail Photos Music Notes Maps Clock Files News Games Books Chat Shop");
var APP_LINES = [
  "Nothing new.",
  "All caught up.",
  "No items yet.",
  "Up to date.",
  "Empty for now."
];
var PAGES = [
  { title: "Welcome", lines: ["Hello there.", "Read on."] },
  { title: "News", lines: ["No news today."] },
  { title: "Tips", lines: ["Swipe to go", "back."] },
  { title: "Update", lines: ["All apps are", "up to date."] },
  { title: "Weather", lines: ["Sunny, 21 C."] },
  { title: "Storage", lines: ["38% used."] },
  { title: "Battery", lines: ["Charging."] },
  { title: "Calendar", lines: ["No events."] }
];
var NOTICES = [
  { title: "Notice", message: "Sync complete." },
  { title: "Notice", message: "Backup saved." },
  { title: "Info", message: "New version." },
  { title: "Info", message: "Draft saved." },
  { title: "Alert", message: "Low storage." }
];
var SETTINGS = split("Wi-Fi GPS Sound Sync Alarm Camera Vibrate Hotspot");
var BUTTON_LABELS = split(
  "Save Send Open Copy Print Close Edit Share Undo Redo Help Find Load Play Stop Reply Sort Zoom"
);
var COMMANDS = split("Delete Archive Rename Share Print Export Copy Move Pin Mute");
var NAMES = [
  ...split("Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Ken Laura Mallory"),
  ...split("Nina Olivia Peggy Quinn Rupert Sybil Trent Uma Victor Walter Xena Yusuf Zoe")
];

// sim/gui/tasks/click-button.ts
var TITLES = ["Toolbar", "Editor", "Actions", "Tools"];
function clickButton(seed) {
  const rng = stream2(seed, "click-button:layout");
  const title = pick(rng, TITLES);
  const labels = sample(rng, BUTTON_LABELS, randInt(rng, 3, 5));
  const target = pick(rng, labels);
  const buttons = placeButtons(
    rng,
    labels.map((label) => ({ id: label, label })),
    { col: 0, row: 2, cols: 16, rows: 10 }
  );
  const screen = { title, widgets: buttons };
  return {
    task: "click-button",
    seed,
    instruction: `Click ${target}.`,
    stages: [choiceStage("buttons", screen, target), finishStage()]
  };
}

// sim/gui/apps/form.ts
var FIELD_ID = "field";
function formStage(name, spec) {
  const screen = (ui) => ({
    title: spec.title,
    widgets: [
      ...spec.widgets,
      { kind: "field", id: FIELD_ID, rect: spec.field, value: ui.typed },
      spec.submit
    ]
  });
  const submit = clickCell(targetCell(spec.submit.rect));
  const typeCode = { type: "type", text: spec.code };
  return {
    name,
    initialUi: { typed: "", scroll: 0 },
    screen,
    react(action, ui) {
      if (action.type === "done") return { kind: "fail" };
      if (action.type === "type")
        return isTypeText(action.text) ? { kind: "stay", ui: { ...ui, typed: action.text } } : { kind: "invalid" };
      if (action.type !== "click") return { kind: "invalid" };
      const hit = hitTest(screen(ui), action.x, action.y);
      if (hit?.id !== spec.submit.id) return { kind: "invalid" };
      return ui.typed === spec.code ? { kind: "next" } : { kind: "fail" };
    },
    expert: (ui) => ui.typed === spec.code ? submit : typeCode,
    memoryDependent: (ui) => spec.memory && ui.typed !== spec.code
  };
}

// sim/gui/apps/menu.ts
var itemId = (label) => `item:${label}`;
function menuScreen(title, items) {
  if (items.length > 5 || items.some((s) => s.length > 12))
    throw new Error(`menu: at most 5 items of \u2264 12 characters, got [${items.join(", ")}]`);
  return {
    title,
    widgets: items.map((label, i2) => ({
      kind: "button",
      id: itemId(label),
      rect: { col: 1, row: 2 + 2 * i2, cols: 14, rows: 2 },
      label,
      align: "left"
    }))
  };
}

// sim/gui/tasks/distractors.ts
var MIN_GAP = 3;
var MAX_GAP = 8;
function drawGap(rng) {
  return randInt(rng, MIN_GAP, MAX_GAP);
}
function distractorStages(rng, app, steps) {
  if (!Number.isInteger(steps) || steps < 2 || steps > 7)
    throw new RangeError(`distractor steps must be 2\u20137, got ${steps}`);
  const count = randInt(rng, Math.max(2, Math.ceil(steps / 2)), Math.min(5, steps));
  const menus = steps - count;
  const kinds = Array.from(
    { length: count },
    (_, i2) => i2 < menus ? "menu" : rng() < 0.5 ? "page" : "notice"
  );
  return shuffle(rng, kinds).flatMap((kind) => {
    if (kind === "page") return [pageStage(rng)];
    if (kind === "notice") return [noticeStage(rng)];
    return menuStages(rng, app);
  });
}
function pageStage(rng) {
  const page = pick(rng, PAGES);
  const width = Math.max(...page.lines.map((l) => l.length));
  const texts = textLines(page.lines, textCol(rng, width), 2 + randInt(rng, 0, 1));
  const screen = pageScreen(rng, page.title, texts, { id: "next", label: "Next" });
  return choiceStage("page", screen, "next");
}
function noticeStage(rng) {
  const notice = pick(rng, NOTICES);
  const buttons = shuffle(rng, [
    { id: "ok", label: "OK" },
    { id: "cancel", label: "Cancel" }
  ]);
  return choiceStage("notice", dialogScreen(rng, notice.title, notice.message, buttons), "ok");
}
function menuStages(rng, app) {
  const others = sample(
    rng,
    APPS.filter((a) => a !== app),
    randInt(rng, 2, 4)
  );
  const menu = menuScreen("Apps", shuffle(rng, [app, ...others]));
  const line = pick(rng, APP_LINES);
  const texts = textLines([line], textCol(rng, line.length), 3);
  const page = pageScreen(rng, app, texts, { id: "back", label: "Back" }, 6);
  return [choiceStage("menu", menu, itemId(app)), choiceStage("app-page", page, "back")];
}

// sim/gui/tasks/code-entry.ts
var codeText = (secret) => String(secret).padStart(4, "0");
function codeEntry(seed, secret) {
  const rng = stream2(seed, "code-entry:layout");
  const code = codeText(secret ?? randInt(stream2(seed, "code-entry:secret"), 0, 9999));
  const app = pick(rng, APPS);
  const gap = drawGap(rng);
  const stages = [
    showCode(rng, code),
    ...distractorStages(rng, app, gap - 1),
    loginForm(rng, code),
    finishStage()
  ];
  const instruction = `Log in with the code you are shown. In menus, open ${app}.`;
  return { task: "code-entry", seed, instruction, stages };
}
function showCode(rng, code) {
  const row = randInt(rng, 2, 3);
  const screen = pageScreen(
    rng,
    "Security",
    [
      { kind: "text", col: textCol(rng, 10), row, text: "Your code:" },
      { kind: "text", col: randInt(rng, 0, 7), row: row + 2, text: code, scale: 2 }
    ],
    { id: "next", label: "Next" }
  );
  return choiceStage("show-code", screen, "next");
}
function loginForm(rng, code) {
  const col = textCol(rng, 11);
  const field = { col: randInt(rng, 1, 9), row: 4, cols: 6, rows: 2 };
  const [submit] = placeButtons(rng, [{ id: "submit", label: "Submit" }], {
    col: 0,
    row: 7,
    cols: 16,
    rows: 5
  });
  return formStage("enter-code", {
    title: "Log in",
    widgets: [{ kind: "text", col, row: 2, text: "Enter code:" }],
    field,
    submit,
    code,
    memory: true
  });
}

// sim/gui/tasks/code-copy.ts
function codeCopy(seed, secret) {
  const rng = stream2(seed, "code-copy:layout");
  const code = codeText(secret ?? randInt(stream2(seed, "code-copy:secret"), 0, 9999));
  const codeCol = randInt(rng, 6, 8);
  const field = { col: randInt(rng, 1, 9), row: 5, cols: 6, rows: 2 };
  const [submit] = placeButtons(rng, [{ id: "submit", label: "Submit" }], {
    col: 0,
    row: 8,
    cols: 16,
    rows: 4
  });
  const form = formStage("copy-code", {
    title: "Verify",
    widgets: [
      { kind: "text", col: 0, row: 2, text: "Code:" },
      { kind: "text", col: codeCol, row: 2, text: code, scale: 2 }
    ],
    field,
    submit,
    code,
    memory: false
  });
  return {
    task: "code-copy",
    seed,
    instruction: "Type the code on screen and submit.",
    stages: [form, finishStage()]
  };
}

// sim/gui/tasks/menu-confirm.ts
var TITLES2 = ["File", "Edit", "Item", "Message"];
var PAIRS = [
  ["Yes", "No"],
  ["OK", "Cancel"]
];
function menuConfirm(seed) {
  const rng = stream2(seed, "menu-confirm:layout");
  const commands = sample(rng, COMMANDS, randInt(rng, 3, 5));
  const target = pick(rng, commands);
  const menu = menuScreen(pick(rng, TITLES2), commands);
  const [confirm, decline] = pick(rng, PAIRS);
  const buttons = shuffle(rng, [
    { id: "confirm", label: confirm },
    { id: "decline", label: decline }
  ]);
  const dialog = dialogScreen(rng, "Confirm", `${target} it?`, buttons);
  return {
    task: "menu-confirm",
    seed,
    instruction: `Open ${target} in the menu and confirm.`,
    stages: [
      choiceStage("menu", menu, itemId(target)),
      choiceStage("confirm", dialog, "confirm"),
      finishStage()
    ]
  };
}

// sim/gui/apps/list.ts
var LIST_ID = "list";
function listStage(name, spec) {
  const list = (ui) => ({
    kind: "list",
    id: LIST_ID,
    rect: spec.rect,
    items: spec.items,
    scroll: ui.scroll
  });
  const screen = (ui) => ({ title: spec.title, widgets: [list(ui)] });
  const rows = visibleRows(list({ typed: "", scroll: 0 }));
  const maxScroll = Math.max(0, spec.items.length - rows);
  if (spec.scroll < 0 || spec.scroll > maxScroll)
    throw new Error(`${name}: scroll ${spec.scroll} out of range`);
  return {
    name,
    initialUi: { typed: "", scroll: spec.scroll },
    screen,
    react(action, ui) {
      if (action.type === "done") return { kind: "fail" };
      if (action.type === "type") return { kind: "invalid" };
      if (action.type === "scroll") {
        const scroll = ui.scroll + action.dy;
        const ok = (action.dy === 1 || action.dy === -1) && scroll >= 0 && scroll <= maxScroll;
        return ok ? { kind: "stay", ui: { ...ui, scroll } } : { kind: "invalid" };
      }
      const hit = hitTest(screen(ui), action.x, action.y);
      if (hit?.item === void 0) return { kind: "invalid" };
      return hit.item === spec.target ? { kind: "next" } : { kind: "fail" };
    },
    expert(ui) {
      if (spec.target < ui.scroll) return { type: "scroll", dy: -1 };
      if (spec.target >= ui.scroll + rows) return { type: "scroll", dy: 1 };
      return clickCell(targetCell(listRowRect(list(ui), spec.target - ui.scroll)));
    },
    memoryDependent: () => false
  };
}

// sim/gui/tasks/scroll-find.ts
var TITLES3 = ["Contacts", "Friends", "Players", "Team"];
var LIST_ITEMS = 12;
var LIST_VISIBLE = 4;
function scrollFind(seed) {
  const rng = stream2(seed, "scroll-find:layout");
  const title = pick(rng, TITLES3);
  const items = sample(rng, NAMES, LIST_ITEMS).sort();
  const target = randInt(rng, 0, LIST_ITEMS - 1);
  const scroll = randInt(rng, 0, LIST_ITEMS - LIST_VISIBLE);
  const rect = { col: 1, row: 2, cols: 14, rows: 2 * LIST_VISIBLE };
  return {
    task: "scroll-find",
    seed,
    instruction: `Find ${items[target]} in the list and click it.`,
    stages: [listStage("list", { title, rect, items, target, scroll }), finishStage()]
  };
}

// sim/gui/tasks/setting-recall.ts
function settingRecall(seed, secret) {
  const rng = stream2(seed, "setting-recall:layout");
  const on = (secret ?? randInt(stream2(seed, "setting-recall:secret"), 0, 1)) % 2 === 1;
  const setting = pick(rng, SETTINGS);
  const app = pick(rng, APPS);
  const gap = drawGap(rng);
  const stages = [
    showSetting(rng, setting, on),
    ...distractorStages(rng, app, gap - 1),
    question(rng, setting, on),
    finishStage()
  ];
  const instruction = `Remember if ${setting} is on, then answer. In menus, open ${app}.`;
  return { task: "setting-recall", seed, instruction, stages };
}
function showSetting(rng, setting, on) {
  const row = randInt(rng, 2, 3);
  const col = randInt(rng, 0, 5);
  const screen = pageScreen(
    rng,
    "Settings",
    [
      { kind: "text", col: randInt(rng, 0, 4), row, text: `${setting}:` },
      { kind: "toggle", rect: { col, row: row + 2, cols: 4, rows: 2 }, on },
      { kind: "text", col: col + 5, row: row + 2, text: on ? "ON" : "OFF", scale: 2 }
    ],
    { id: "next", label: "Next" },
    8
  );
  return choiceStage("show-setting", screen, "next");
}
function question(rng, setting, on) {
  const buttons = shuffle(rng, [
    { id: "yes", label: "Yes" },
    { id: "no", label: "No" }
  ]);
  const screen = dialogScreen(rng, "Question", `Was ${setting} on?`, buttons);
  return choiceStage("question", screen, on ? "yes" : "no", true);
}

// sim/gui/tasks.ts
var MEMORY_GAP = [MIN_GAP, MAX_GAP];
var TASKS2 = [
  { name: "code-entry", memory: true, gap: MEMORY_GAP, build: codeEntry },
  { name: "setting-recall", memory: true, gap: MEMORY_GAP, build: settingRecall },
  { name: "click-button", memory: false, build: clickButton },
  { name: "menu-confirm", memory: false, build: menuConfirm },
  { name: "scroll-find", memory: false, build: scrollFind },
  { name: "code-copy", memory: false, build: codeCopy }
];
function getTask(name) {
  const task = TASKS2.find((t) => t.name === name);
  if (!task)
    throw new RangeError(`unknown task '${name}'; known: ${TASKS2.map((t) => t.name).join(", ")}`);
  return task;
}

// sim/gui/env.ts
var MAX_STEPS = 12;
var GuiEnv = class {
  #episode;
  #stage = 0;
  #ui = { typed: "", scroll: 0 };
  #step = 0;
  #outcome;
  /**
   * Start an episode of task `taskName` for `seed` (uint32); `secret` overrides a memory task's
   * remembered value (tests).
   * @throws RangeError for an unknown task
   */
  reset(taskName, seed, secret) {
    this.#episode = getTask(taskName).build(seed, secret);
    this.#stage = 0;
    this.#ui = this.#episode.stages[0].initialUi;
    this.#step = 0;
    this.#outcome = void 0;
    return this.#observe();
  }
  /**
   * Apply one action.
   * @throws Error before `reset` or after the episode ended
   */
  step(action) {
    if (this.#outcome) throw new Error("episode is over; call reset()");
    const stage = this.stage;
    const reaction = wellFormed(action) ? stage.react(action, this.#ui) : { kind: "invalid" };
    this.#step++;
    if (reaction.kind === "next") {
      this.#stage++;
      this.#ui = this.stage.initialUi;
    } else if (reaction.kind === "stay") this.#ui = reaction.ui;
    else if (reaction.kind === "fail" || reaction.kind === "success") this.#outcome = reaction.kind;
    if (!this.#outcome && this.#step >= MAX_STEPS) this.#outcome = "step-limit";
    const outcome = this.#outcome;
    return {
      ...this.#observe(),
      done: !!outcome,
      success: outcome === "success",
      invalid: reaction.kind === "invalid",
      outcome
    };
  }
  /** The current episode (privileged: stages know the secret). @throws Error before reset */
  get episode() {
    if (!this.#episode) throw new Error("call reset() first");
    return this.#episode;
  }
  /** The current stage (privileged). */
  get stage() {
    return this.episode.stages[this.#stage];
  }
  /** The current stage's UI state (typed text, list scroll). */
  get ui() {
    return this.#ui;
  }
  /** True once the episode has ended. */
  get done() {
    return !!this.#outcome;
  }
  #observe() {
    const frame = renderScreen(this.stage.screen(this.#ui));
    let png2;
    return {
      frame,
      png: () => png2 ??= framePng(frame),
      instruction: this.episode.instruction,
      step: this.#step,
      memoryDependent: !this.#outcome && this.stage.memoryDependent(this.#ui)
    };
  }
};
function wellFormed(a) {
  if (a === null || typeof a !== "object") return false;
  switch (a.type) {
    case "click":
      return Number.isFinite(a.x) && Number.isFinite(a.y);
    case "type":
      return typeof a.text === "string";
    case "scroll":
      return Number.isFinite(a.dy);
    case "done":
      return true;
    default:
      return false;
  }
}

// sim/gui/expert.ts
function expertAction(env) {
  if (env.done) throw new Error("episode is over");
  return env.stage.expert(env.ui);
}

// train/gen/npy.ts
import { closeSync, openSync, writeSync } from "node:fs";
var BYTES = { "|u1": 1, "<i2": 2, "<i4": 4, "<f4": 4 };
function npyHeader(dtype, shape) {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${dims}, }`;
  const unpadded = 10 + dict.length + 1;
  dict += " ".repeat((64 - unpadded % 64) % 64) + "\n";
  if (dict.length > 65535) throw new RangeError("npy header too long for format 1.0");
  const out = new Uint8Array(10 + dict.length);
  out.set([147, 78, 85, 77, 80, 89, 1, 0], 0);
  out[8] = dict.length & 255;
  out[9] = dict.length >> 8;
  for (let i2 = 0; i2 < dict.length; i2++) out[10 + i2] = dict.charCodeAt(i2);
  return out;
}
var NpyColumn = class {
  dtype;
  /** Shape of one row (e.g. [96, 128, 3] for a frame; [] for a scalar per row). */
  rowShape;
  #rowLength;
  #chunks = [];
  rows = 0;
  constructor(dtype, rowShape) {
    this.dtype = dtype;
    this.rowShape = rowShape;
    this.#rowLength = rowShape.reduce((a, b) => a * b, 1);
  }
  /** Appends one row; `values` must hold exactly the row's element count. */
  push(values) {
    if (values.length !== this.#rowLength)
      throw new RangeError(`row has ${values.length} values, expected ${this.#rowLength}`);
    let bytes;
    switch (this.dtype) {
      case "|u1":
        bytes = Uint8Array.from(values);
        break;
      case "<i2":
        bytes = new Uint8Array(Int16Array.from(values).buffer);
        break;
      case "<i4":
        bytes = new Uint8Array(Int32Array.from(values).buffer);
        break;
      case "<f4":
        bytes = new Uint8Array(Float32Array.from(values).buffer);
        break;
    }
    this.#chunks.push(bytes);
    this.rows++;
  }
  get shape() {
    return [this.rows, ...this.rowShape];
  }
  /** Writes the column as `path` (.npy). Returns the bytes written. */
  write(path) {
    const header = npyHeader(this.dtype, this.shape);
    const fd2 = openSync(path, "w");
    try {
      let n = writeSync(fd2, header);
      for (const c of this.#chunks) n += writeSync(fd2, c);
      if (n !== header.length + this.rows * this.#rowLength * BYTES[this.dtype]) throw new Error("short write");
      return n;
    } finally {
      closeSync(fd2);
    }
  }
};

// train/gen/gui.ts
var GUI_TARGET_COLUMNS = ["type", "click_x", "click_y", "digit0", "digit1", "digit2", "digit3", "scroll"];
var GUI_TYPES = ["click", "type", "scroll", "done"];
var GUI_TASKS = TASKS2.map((t) => ({ name: t.name, memory: t.memory }));
function guiTarget(action) {
  const { classId, digits } = encodeAction(action);
  const row = [-1, -1, -1, -1, -1, -1, -1, -1];
  if (classId < GRID_COLS * GRID_ROWS) {
    row[0] = 0;
    row[1] = classId % GRID_COLS;
    row[2] = Math.floor(classId / GRID_COLS);
  } else if (classId === TYPE) {
    row[0] = 1;
    digits.forEach((d, i2) => row[3 + i2] = d);
  } else if (classId === SCROLL_UP || classId === SCROLL_DOWN) {
    row[0] = 2;
    row[7] = classId === SCROLL_UP ? 0 : 1;
  } else if (classId === DONE) row[0] = 3;
  return row;
}
function guiColumns() {
  return {
    frames: new NpyColumn("|u1", [SCREEN_HEIGHT, SCREEN_WIDTH, 3]),
    // glyph class per 8×8 cell (sim/gui/raster.ts Frame.glyphs): the auxiliary reading target
    glyphs: new NpyColumn("|u1", [GRID_ROWS, GRID_COLS]),
    targets: new NpyColumn("<i2", [GUI_TARGET_COLUMNS.length]),
    memory: new NpyColumn("|u1", []),
    random: new NpyColumn("|u1", [])
  };
}
function randomAction(rand) {
  const u = rand();
  const int = (n) => Math.floor(rand() * n);
  if (u < 0.6) return { type: "click", x: int(GRID_COLS) * 8 + 4, y: int(GRID_ROWS) * 8 + 4 };
  if (u < 0.8) return { type: "scroll", dy: rand() < 0.5 ? -1 : 1 };
  return { type: "type", text: String(int(1e4)).padStart(4, "0") };
}
function expertRecovers(task, seed, history, action) {
  const env = new GuiEnv();
  env.reset(task, seed);
  for (const a of [...history, action]) if (env.step(a).done) return false;
  for (; ; ) {
    const r = env.step(expertAction(env));
    if (r.done) return r.success;
  }
}
function recoverableRandom(env, task, seed, history, rand) {
  for (let tries = 0; tries < 8; tries++) {
    const a = randomAction(rand);
    const kind = env.stage.react(a, env.ui).kind;
    if (kind !== "invalid" && kind !== "stay") continue;
    if (expertRecovers(task, seed, history, a)) return a;
  }
  return void 0;
}
function guiEpisode(cols, taskIndex, seed, randomP, rand) {
  const task = GUI_TASKS[taskIndex].name;
  const env = new GuiEnv();
  let obs = env.reset(task, seed);
  const history = [];
  const firstRow = cols.frames.rows;
  let randomActions = 0;
  for (; ; ) {
    const expert = expertAction(env);
    cols.frames.push(obs.frame.data);
    cols.glyphs.push(obs.frame.glyphs);
    cols.targets.push(guiTarget(expert));
    cols.memory.push([obs.memoryDependent ? 1 : 0]);
    let action = expert;
    const alt = rand() < randomP ? recoverableRandom(env, task, seed, history, rand) : void 0;
    if (alt) {
      action = alt;
      randomActions++;
    }
    cols.random.push([alt ? 1 : 0]);
    history.push(action);
    const r = env.step(action);
    obs = r;
    if (r.done) {
      const rows = cols.frames.rows - firstRow;
      return { firstRow, rows, task: taskIndex, success: r.success ? 1 : 0, randomActions, instruction: env.episode.instruction };
    }
  }
}

// train/gen/robot.ts
var ROBOT_TASKS = TASKS.map((t) => ({ name: t.name, memory: t.memory }));
var ROBOT_CAMERAS = DEFAULT_CAMERAS.map((c) => ({ name: c.name, height: c.height, width: c.width }));
function robotColumns() {
  const frames = {};
  for (const c of DEFAULT_CAMERAS) frames[c.name] = new NpyColumn("|u1", [c.height, c.width, 3]);
  return {
    frames,
    proprio: new NpyColumn("<f4", [PROPRIO_SIZE]),
    targets: new NpyColumn("<f4", [CHUNK_TICKS, ACTION_SIZE]),
    memory: new NpyColumn("|u1", []),
    random: new NpyColumn("|u1", [])
  };
}
function expertRecovers2(episode, live, metTicks, action) {
  const world = cloneWorld(live);
  let met = metTicks;
  const tick = (a) => {
    advance(episode, world, a);
    met = episode.satisfied(world) ? met + 1 : 0;
  };
  tick(action);
  while (world.tick < episode.maxTicks) tick(expertChunk(episode, world, 1)[0]);
  return met >= episode.dwellTicks;
}
function robotEpisode(cols, taskIndex, seed, randomP, rand) {
  const task = ROBOT_TASKS[taskIndex].name;
  const env = new RobotEnv();
  let obs = env.reset(task, seed);
  const episode = env.episode;
  let met = episode.satisfied(env.world) ? 1 : 0;
  const firstRow = cols.memory.rows;
  let randomActions = 0;
  let success = false;
  while (!env.done) {
    const chunk = expertChunk(episode, env.world);
    obs.frames.forEach((f, i2) => cols.frames[env.cameras[i2].name].push(f.data));
    cols.proprio.push(obs.proprio);
    cols.targets.push(chunkToArray(chunk));
    cols.memory.push([obs.memoryDependent ? 1 : 0]);
    let action = chunk[0];
    let random = 0;
    if (rand() < randomP) {
      const angle = rand() * 2 * Math.PI;
      const speed = Math.sqrt(rand());
      const alt = { dx: speed * Math.cos(angle), dy: speed * Math.sin(angle), grip: chunk[0].grip };
      if (expertRecovers2(episode, env.world, met, alt)) {
        action = alt;
        random = 1;
        randomActions++;
      }
    }
    cols.random.push([random]);
    const r = env.step(action);
    met = episode.satisfied(env.world) ? met + 1 : 0;
    success = r.success;
    obs = r;
  }
  return { firstRow, rows: cols.memory.rows - firstRow, task: taskIndex, success: success ? 1 : 0, randomActions, instruction: obs.instruction };
}

// train/gen.ts
var UsageError = class extends Error {
};
var MAX_WEIGHT = 1e3;
function parseArgs(argv) {
  let values;
  try {
    ;
    ({ values } = nodeParseArgs({
      args: argv,
      strict: true,
      options: Object.fromEntries(["domain", "episodes", "out", "workers", "seed", "random-p", "memory-weight", "task-weight", "shard"].map((n) => [n, { type: "string" }]))
    }));
  } catch (e) {
    throw new UsageError(`${e.message} (usage: --domain gui|robot --episodes N --out DIR [--workers W] [--seed S] [--random-p P] [--memory-weight W] [--task-weight name=W,\u2026])`);
  }
  const need = (name) => {
    const v = values[name];
    if (v === void 0 || v === "") throw new UsageError(`missing --${name}`);
    return v;
  };
  const int = (name, fallback, min, max = Number.MAX_SAFE_INTEGER) => {
    const raw = values[name] ?? fallback;
    if (!/^-?[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max)
      throw new UsageError(`--${name} must be an integer in ${min}\u2026${max}, got '${raw}'`);
    return Number(raw);
  };
  const domain = need("domain");
  if (domain !== "gui" && domain !== "robot") throw new UsageError(`--domain must be gui or robot, got ${domain}`);
  const rawP = values["random-p"] ?? "0.15";
  const randomP = /^[0-9]*\.?[0-9]+$/.test(rawP) ? Number(rawP) : NaN;
  if (!(randomP >= 0 && randomP <= 1)) throw new UsageError(`--random-p must be a number in 0\u20261, got '${values["random-p"]}'`);
  return {
    domain,
    episodes: int("episodes", need("episodes"), 1),
    out: need("out"),
    workers: int("workers", "1", 1, 256),
    seed: int("seed", "1", 0),
    randomP,
    memoryWeight: int("memory-weight", "2", 1, MAX_WEIGHT),
    taskWeights: parseTaskWeights(values["task-weight"] ?? "", domain),
    shard: values.shard === void 0 ? void 0 : int("shard", "0", 0, 255)
  };
}
function parseTaskWeights(spec, domain) {
  const names = new Set(tasksOf({ domain }).map((t) => t.name));
  const out = {};
  for (const part of spec.split(",")) {
    if (!part && spec === "") continue;
    const m = /^([^=]+)=([0-9]+)$/.exec(part);
    if (!m) throw new UsageError(`--task-weight: '${part}' is not name=weight (tasks: ${[...names].join(", ")})`);
    const [, name, w] = m;
    if (!names.has(name)) throw new UsageError(`--task-weight: no ${domain} task named '${name}' (tasks: ${[...names].join(", ")})`);
    if (name in out) throw new UsageError(`--task-weight: '${name}' is named twice`);
    if (Number(w) < 1 || Number(w) > MAX_WEIGHT) throw new UsageError(`--task-weight ${name}: weight must be an integer in 1\u2026${MAX_WEIGHT}, got ${w}`);
    out[name] = Number(w);
  }
  return out;
}
var tasksOf = (o) => o.domain === "gui" ? GUI_TASKS : ROBOT_TASKS;
function taskOrder(o) {
  return tasksOf(o).flatMap((t, i2) => Array(o.taskWeights[t.name] ?? (t.memory ? o.memoryWeight : 1)).fill(i2));
}
function runShard(o, shard, shards) {
  const dir = join(o.out, `shard-${shard}`);
  mkdirSync(dir, { recursive: true });
  const order = taskOrder(o);
  const rng = mulberry32(streamSeed(o.seed * 7919 + shard, "gen:random-actions"));
  const rand = () => rng.next();
  const episodes = new NpyColumn("<i4", [6]);
  const instructions = [];
  const t0 = performance.now();
  const gui = o.domain === "gui" ? guiColumns() : void 0;
  const robot = o.domain === "robot" ? robotColumns() : void 0;
  let successes = 0;
  for (let i2 = shard; i2 < o.episodes; i2 += shards) {
    const seed = streamSeed(o.seed, `episode:${i2}`);
    const task = order[i2 % order.length];
    const e = gui ? guiEpisode(gui, task, seed, o.randomP, rand) : robotEpisode(robot, task, seed, o.randomP, rand);
    const bytes = new TextEncoder().encode(e.instruction);
    instructions.push(bytes);
    episodes.push([e.firstRow, e.rows, e.task, e.success, e.randomActions, bytes.length]);
    successes += e.success;
  }
  const maxBytes = Math.max(1, ...instructions.map((b) => b.length));
  const instr = new NpyColumn("|u1", [maxBytes]);
  for (const b of instructions) {
    const row = new Uint8Array(maxBytes);
    row.set(b);
    instr.push(row);
  }
  const files = {};
  const write = (name, col) => {
    const file = `${name}.npy`;
    col.write(join(dir, file));
    files[name] = { file, dtype: col.dtype, shape: col.shape };
  };
  write("episodes", episodes);
  write("instructions", instr);
  if (gui) {
    write("frames", gui.frames);
    write("glyphs", gui.glyphs);
    write("targets", gui.targets);
    write("memory", gui.memory);
    write("random", gui.random);
  } else {
    for (const [cam, col] of Object.entries(robot.frames)) write(`frames.${cam}`, col);
    write("proprio", robot.proprio);
    write("targets", robot.targets);
    write("memory", robot.memory);
    write("random", robot.random);
  }
  const rows = episodes.rows ? files.memory.shape[0] : 0;
  const summary = {
    dir: `shard-${shard}`,
    episodes: episodes.rows,
    rows,
    expertSuccesses: successes,
    seconds: (performance.now() - t0) / 1e3,
    files
  };
  writeFileSync(join(dir, "shard.json"), JSON.stringify(summary, null, 2));
  return summary;
}
function indexHeader(o) {
  const common = {
    format: "stepkv-bc-v1",
    domain: o.domain,
    seed: o.seed,
    episodesRequested: o.episodes,
    randomP: o.randomP,
    memoryWeight: o.memoryWeight,
    taskWeights: o.taskWeights,
    tasks: tasksOf(o),
    episodeColumns: ["firstRow", "rows", "task", "success", "randomActions", "instructionBytes"]
  };
  if (o.domain === "gui")
    return { ...common, targetColumns: GUI_TARGET_COLUMNS, actionTypes: GUI_TYPES, gridCols: 16, gridRows: 12, cameras: [{ name: "screen", height: 96, width: 128 }], proprioSize: 0 };
  return { ...common, targetColumns: ["dx", "dy", "grip"], chunkTicks: 4, cameras: ROBOT_CAMERAS, proprioSize: 5 };
}
async function main() {
  const o = parseArgs(process.argv.slice(2));
  mkdirSync(o.out, { recursive: true });
  if (o.shard !== void 0) {
    runShard(o, o.shard, o.workers);
    return;
  }
  const t0 = performance.now();
  let shards;
  if (o.workers <= 1) shards = [runShard(o, 0, 1)];
  else {
    const args = process.argv.slice(2);
    await Promise.all(
      Array.from(
        { length: o.workers },
        (_, k) => new Promise((resolve, reject) => {
          const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...args, "--shard", String(k)], { stdio: "inherit" });
          child.on("exit", (code) => code === 0 ? resolve() : reject(new Error(`shard ${k} exited with ${code}`)));
        })
      )
    );
    shards = Array.from({ length: o.workers }, (_, k) => JSON.parse(readFileSync(join(o.out, `shard-${k}`, "shard.json"), "utf8")));
  }
  const index = { ...indexHeader(o), shards };
  writeFileSync(join(o.out, "index.json"), JSON.stringify(index, null, 2));
  const episodes = shards.reduce((a, s) => a + s.episodes, 0);
  const rows = shards.reduce((a, s) => a + s.rows, 0);
  const ok = shards.reduce((a, s) => a + s.expertSuccesses, 0);
  const seconds = (performance.now() - t0) / 1e3;
  console.log(`gen ${o.domain}: ${episodes} episodes, ${rows} frames, expert success ${ok}/${episodes}, ${seconds.toFixed(1)} s (${o.workers} workers) -> ${o.out}`);
}
main().catch((e) => {
  console.error(e instanceof UsageError ? `gen: ${e.message}` : e);
  process.exit(1);
});
