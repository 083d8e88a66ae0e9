#!/usr/bin/env python3
"""native_diff.py: the native module (redis/module/) against the function
library, differentially.

Three redis-servers get the same random operations: L answers every hot
call with FCALL (the library), M with the module's command, X with either
at random per call, so each side replays and builds on what the other
wrote.  Every reply must be the same bytes (redemption ids are mapped to
their order of appearance), and so must the whole keyspace at the end of
a seed (TTLs and hold deadlines within a tolerance).

  native_diff.py [--seconds S | --seeds N] [--seed N] [--ops N]
                 [--module build/redis-module/voucher.so] [--san]

--seconds runs seeds one after the other until the time is up (the
bounded run of scripts/test); --seed N replays one seed.  On a difference
it prints the seed, the operation and the three replies, and exits 1.
--san loads voucher-san.so into servers started with LD_PRELOAD=libasan.
"""

import argparse
import hashlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
MAXINT = 2 ** 53 - 1


class Redis:
    """A blocking RESP2 client that keeps each reply's bytes."""

    def __init__(self, port):
        self.s = socket.create_connection(('127.0.0.1', port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b''

    def _more(self):
        d = self.s.recv(1 << 16)
        if not d:
            raise EOFError('redis closed the connection')
        self.buf += d

    def _parse(self, i):
        while True:
            j = self.buf.find(b'\r\n', i)
            if j >= 0:
                break
            self._more()
        t, body = self.buf[i:i + 1], self.buf[i + 1:j]
        if t == b'+':
            return body.decode('latin1'), j + 2
        if t == b'-':
            return RuntimeError(body.decode('latin1')), j + 2
        if t == b':':
            return int(body), j + 2
        if t == b'$':
            n = int(body)
            if n < 0:
                return None, j + 2
            while len(self.buf) < j + 4 + n:
                self._more()
            return self.buf[j + 2:j + 2 + n], j + 4 + n
        if t == b'*':
            n = int(body)
            if n < 0:
                return None, j + 2
            out, k = [], j + 2
            for _ in range(n):
                v, k = self._parse(k)
                out.append(v)
            return out, k
        raise ValueError('bad reply %r' % self.buf[i:i + 40])

    def call(self, *args):
        a = [x if isinstance(x, bytes) else str(x).encode() for x in args]
        self.s.sendall(b'*%d\r\n' % len(a) + b''.join(
            b'$%d\r\n%s\r\n' % (len(x), x) for x in a))
        while True:
            try:
                v, k = self._parse(0)
                break
            except IndexError:
                self._more()
        raw, self.buf = self.buf[:k], self.buf[k:]
        return raw, v

    def ok(self, *args):
        raw, v = self.call(*args)
        if isinstance(v, Exception):
            raise RuntimeError('%r: %s' % (args[:4], v))
        return v


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, name, module, workdir, env, replicaof=None):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        for attempt in range(5):
            self.port = free_port()
            self.log = open(os.path.join(self.dir, 'log'), 'w')
            self.proc = subprocess.Popen(
                [os.environ.get('VOUCHER_REDIS_SERVER', 'redis-server'),
                 '--bind', '127.0.0.1', '--port', str(self.port),
                 '--save', '', '--appendonly', 'no', '--dir', self.dir,
                 '--stream-node-max-bytes', '0']
                + (['--loadmodule', module] if module else [])
                + (['--replicaof', '127.0.0.1', str(replicaof)]
                   if replicaof else []),
                stdout=self.log, stderr=subprocess.STDOUT, env=env)
            for _ in range(300):
                try:
                    self.r = Redis(self.port)
                    if self.r.ok('PING') == 'PONG':
                        return
                except (OSError, EOFError):
                    pass
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
            self.stop()
        raise RuntimeError('redis-server did not start, see ' + self.dir)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def library_text(path):
    if path:
        src = open(path, 'rb').read()
    else:
        # the library as every reader gets it: joined by scripts/gen-lua
        src = subprocess.run([os.path.join(ROOT, 'scripts', 'gen-lua')],
                             capture_output=True, check=True).stdout
    ver = hashlib.sha1(src).hexdigest()[:16].encode()
    return src.replace(b'__VOUCHER_LIB_VERSION__', ver), ver


# ---------------------------------------------------------------- the data

def campaigns(now):
    dow = (now // 86400 + 3) % 7 + 1

    def hhmm(sec):
        sec %= 86400
        return '%02d:%02d' % (sec // 3600, sec // 60 % 60)

    tod = now % 86400
    tz = 7 * 3600
    return {
        'pct': ['kind', 'percent', 'value', 1000, 'cap', 300,
                'min_amount', 1000],
        'pct100': ['kind', 'percent', 'value', 10000],
        'pct0': ['kind', 'percent'],
        'amt': ['kind', 'amount', 'value', 500, 'currency', 'THB'],
        'amt0': ['kind', 'amount'],
        'fix': ['kind', 'fixed_price', 'value', 2000],
        'fixi': ['kind', 'fixed_price', 'value', 1500,
                 'include_categories', 'tea,cake'],
        'free': ['kind', 'free_item', 'free_sku', 'SKU1', 'value', 2],
        'free1': ['kind', 'free_item', 'free_sku', 'SKU2'],
        'gift': ['kind', 'gift_card', 'value', 5000],
        'giftnv': ['kind', 'gift_card'],
        'filt': ['kind', 'percent', 'value', 2000,
                 'include_skus', 'SKU1,SKU2', 'exclude_categories', 'bad'],
        'excl': ['kind', 'amount', 'value', 700, 'exclude_skus', 'SKU3'],
        'later': ['kind', 'percent', 'value', 500, 'starts_at', now + 1000],
        'over': ['kind', 'amount', 'value', 100, 'starts_at', now - 1000,
                 'ends_at', now - 10],
        'days': ['kind', 'percent', 'value', 100, 'days', str(dow)],
        'daysno': ['kind', 'percent', 'value', 100,
                   'days', ''.join(str(d) for d in range(1, 8) if d != dow)],
        'hrs': ['kind', 'amount', 'value', 50,
                'hours', hhmm(tod - 7200) + '-' + hhmm(tod + 7200)],
        'hrsno': ['kind', 'amount', 'value', 50,
                  'hours', hhmm(tod + 7200) + '-' + hhmm(tod + 10800)],
        'hrswrap': ['kind', 'amount', 'value', 50,
                    'hours', hhmm(tod + 3600) + '-' + hhmm(tod - 3600)],
        'tz': ['kind', 'amount', 'value', 60, 'tz_offset', '+07:00',
               'hours', hhmm(tod + tz - 3600) + '-' + hhmm(tod + tz + 3600),
               'days', str(((now + tz) // 86400 + 3) % 7 + 1)],
        'maxred': ['kind', 'amount', 'value', 100, 'max_redemptions', 5],
        'maxdisc': ['kind', 'amount', 'value', 300, 'max_discount', 1000],
        'pc': ['kind', 'percent', 'value', 1000, 'per_customer', 2],
        'pcc': ['kind', 'amount', 'value', 100, 'per_customer_code', 1],
        'cmu': ['kind', 'amount', 'value', 100, 'code_max_uses', 3],
        'paused': ['kind', 'amount', 'value', 100, 'status', 'paused'],
        'win': ['kind', 'percent', 'value', 10000, 'starts_at', now - 5000,
                'ends_at', now + 5000],
        'big': ['kind', 'amount', 'value', MAXINT, 'max_discount', MAXINT],
        # for some loyalty tiers only
        'tierg': ['kind', 'amount', 'value', 200, 'tiers', 'gold'],
        'tierbs': ['kind', 'percent', 'value', 500, 'tiers', 'base,silver'],
        'tierx': ['kind', 'amount', 'value', 10, 'tiers', 'platinum',
                  'per_customer', 3],
        # the cart's fields (redis/lib/cart.lua), which a single-code
        # call does not read: channels, stacking rules, automatic
        # promotions (whose own codes auto:<campaign> any call can name)
        'chan': ['kind', 'amount', 'value', 300, 'channels', 'app,web',
                 'stacking', 'combinable', 'stack_category', 'food',
                 'stack_priority', 2, 'stack_cap', 400],
        'chanp': ['kind', 'percent', 'value', 1500, 'channels', 'pos',
                  'stacking', 'exclusive', 'per_customer', 2],
        'autop': ['kind', 'percent', 'value', 500, 'auto_apply', 1,
                  'stacking', 'combinable', 'stack_priority', 1],
        'autoamt': ['kind', 'amount', 'value', 100, 'auto_apply', 1,
                    'min_amount', 2000, 'channels', 'web',
                    'stacking', 'combinable', 'stack_category', 'food',
                    'max_redemptions', 4],
        'autog': ['kind', 'amount', 'value', 50, 'auto_apply', 1,
                  'tiers', 'gold', 'stacking', 'combinable',
                  'stack_cap', 20],
        # the library's rules (redis/lib/rules.lua), which the module
        # hands over: periods, conditions, the kinds it does not price
        'perd': ['kind', 'amount', 'value', 100, 'tz_offset', '+07:00',
                 'customer_uses_per', 'day:2',
                 'customer_amount_per', 'week:250'],
        'perm': ['kind', 'percent', 'value', 1000,
                 'customer_amount_per', 'month:700',
                 'customer_amount_max', 1500],
        'cond': ['kind', 'amount', 'value', 150,
                 'conditions', 'order.channel in shop,web,line_man;'
                 'customer.branch not_in BKK9;order.basket gte 2'],
        'bxgy': ['kind', 'buy_x_get_y', 'buy_qty', 2, 'get_qty', 1,
                 'include_categories', 'tea,cake'],
        'bxgyp': ['kind', 'buy_x_get_y', 'buy_qty', 1, 'get_qty', 1,
                  'value', 5000, 'customer_uses_per', 'month:3'],
        'steps': ['kind', 'steps', 'steps', '1000:100,5000:600,100000:9000',
                  'cap', 5000],
        'ship': ['kind', 'free_shipping', 'cap', 1000,
                 'customer_uses_per', 'week:1'],
    }

# the automatic promotions' own codes
AUTO_CODES = ['auto:autop', 'auto:autoamt', 'auto:autog']


# the loyalty programme of a seed (seed % 5), its members and their tiers
PROGRAMMES = [
    None,
    ['every', 100, 'points', 1, 'point_value', 10,
     'tiers', 'base:0:100,silver:300:125,gold:1000:150',
     'expiry_months', 12],
    ['every', 100, 'points', 1, 'point_value', 0,
     'tiers', 'base:0:100,gold:500:200'],
    ['every', 10, 'points', 3, 'point_value', 1],
    ['status', 'paused', 'every', 100, 'points', 1, 'point_value', 250,
     'tiers', 'base:0:100,silver:300:125'],
]

# members: an earn (order amount) or an adjust (no tier of its own)
MEMBERS = [('alice', 'earn', 150000), ('bob', 'adjust', 500),
           ('c' * 80, 'earn', 35000), ('carol', 'earn', 900)]


def codes(now):
    out = []
    for c in campaigns(now):
        if c == 'giftnv':
            out.append(('HGIFTNV', ['campaign', c, 'balance', 300]))
            continue
        out.append(('H' + c.upper(), ['campaign', c]))
        out.append(('M' + c.upper(), ['campaign', c, 'max_uses', 2]))
        out.append(('A' + c.upper(), ['campaign', c, 'customer', 'alice']))
    out += [
        ('DIS', ['campaign', 'pct', 'status', 'disabled']),
        ('OWNWIN', ['campaign', 'win', 'starts_at', now - 100,
                    'ends_at', now + 100]),
        ('OWNLATE', ['campaign', 'win', 'starts_at', now + 100]),
        ('OWNEND', ['campaign', 'win', 'ends_at', now - 100]),
        ('GIFT2', ['campaign', 'gift', 'balance', 700]),
        ('GIFT0', ['campaign', 'gift', 'balance', 0]),
        ('GIFTBIG', ['campaign', 'gift', 'balance', MAXINT]),
        ('UNLIM', ['campaign', 'cmu', 'max_uses', 0]),
    ]
    return out


COMPACT = [('pct', 'CP1', ''), ('pct', 'CP2', 'bob'), ('pcc', 'CP3', ''),
           ('maxred', 'CP4', ''), ('amt', 'CP5', 'alice'),
           ('pc', 'CP6', 'carol'), ('gift', 'CP7', '')]

CUSTOMERS = ['', 'alice', 'bob', 'carol', 'dave x', 'c' * 80]
POINTS = ['p1', 'p5', 'p50', 'p120', 'p1500', 'p100000', 'p007', 'p0', 'p',
          'px', 'p-1', 'p1.5', 'P5', 'p9007199254740991',
          'p9007199254740992']
SKUS = ['SKU1', 'SKU2', 'SKU3', 'SKU1 ', '']
CATS = ['tea', 'cake', 'bad', '', 'Tea', 'shipping']
# the "m..." argument: order metadata (o) and customer attributes (c)
METAS = ['m', 'mochannel=web', 'mochannel=shop\0cbranch=BKK1\0obasket=3',
         'mochannel=line_man\0obasket=2', 'mochannel=pos\0obasket=9',
         'mcbranch=BKK9\0ochannel=web\0obasket=5', 'mobasket=x',
         'mbad', 'mo=1', 'mochannel=web\0\0']
ODD_NUMBERS = ['007', '1e3', ' 12', '12 ', '0x10', 'abc', '1.5', '-3', '',
               '9007199254740993', '1e400', 'nan', '12\x00x', str(MAXINT)]


def setup(srv, lib, now, seed):
    r = srv.r
    r.ok('FLUSHALL')
    r.ok('FUNCTION', 'LOAD', 'REPLACE', lib)
    for c, f in campaigns(now).items():
        r.ok('FCALL', 'voucher_campaign_set', 1, '{v}:k:' + c, *f)
    for code, f in codes(now):
        r.ok('FCALL', 'voucher_code_set', 1, '{v}:c:' + code, *f)
    for camp, code, cust in COMPACT:
        r.ok('FCALL', 'voucher_codes_add', 1, '{v}:k:' + camp, 'new', 0,
             'code,customer', code, cust)
    # a code whose campaign is gone, a key of the wrong type, a campaign
    # without rev (never cached), a bucket value the library cannot read
    r.ok('HSET', '{v}:c:NOCAMP', 'k', 'gone')
    r.ok('SET', '{v}:c:STRKEY', 'x')
    r.ok('HSET', '{v}:k:norev', 'status', 'active', 'kind', 'amount',
         'value', '10')
    r.ok('HSET', '{v}:c:NOREV', 'k', 'norev')
    bucket = '{v}:cb:' + hashlib.sha1(b'BADCP').hexdigest()[:4]
    r.ok('HSET', bucket, 'BADCP', 'x pct')
    r.ok('HSET', '{v}:c:EMPTYK', 's', 'd')
    for name, camp in SERIES:
        r.ok('FCALL', 'voucher_series_set', 1, '{v}:sr:' + name, camp,
             SERIES_SIZE, 'S', 8, 5, '', '')
    prog = PROGRAMMES[seed % len(PROGRAMMES)]
    if prog:
        r.ok('FCALL', 'voucher_loyalty_set', 1, '{v}:lp', *prog)
        for who, how, n in MEMBERS[:3 + seed % 2]:
            if how == 'earn':
                r.call('FCALL', 'voucher_loyalty_earn', 1, '{v}:lm:' + who,
                       'setup-' + who, n, 0, now)
            else:
                r.call('FCALL', 'voucher_loyalty_adjust', 1, '{v}:lm:' + who,
                       '+%d' % n, 'setup', '', now)


ALL_CODES = None

# serial series (redis/lib/serial.lua): name, campaign; a bit per code
SERIES = [('ser', 'pct'), ('sm', 'maxred'), ('sp', 'pc'), ('sw', 'hrsno'),
          ('sa', 'amt')]
SERIES_SIZE = 8


def gen_serial(rnd, i, now, hist, maps, servers):
    """a serial series' call, as nginx sends it: FCALL with the bit as a
    second key (the module's commands take one key, so both sides answer
    with the library, whose writes the native calls then read); or a
    rollback or release of a redemption, which gives a bit back.
    {server: command}"""
    y = rnd.random()
    if y < 0.7:
        fn = rnd.choice(['voucher_redeem', 'voucher_redeem',
                         'voucher_validate', 'voucher_reserve'])
        args = gen_eval(rnd, i, now, fn != 'voucher_validate', hist)
        name = rnd.choice(SERIES)[0]
        n = rnd.randrange(SERIES_SIZE + 5)
        bit = '{v}:sb:%s:%d' % (name, n)
        if rnd.random() < 0.05:
            bit = rnd.choice(['{v}:sb:ser:x', '{v}:sb:nope:1', '{w}:sb:ser:1',
                              '{v}:sb:ser:99999999999', '{v}:sb:ser:',
                              '{v}:sb:ser:-1', '{v}:sb:' + 'x' * 40 + ':1',
                              '{v}:sr:ser:1', '{v}:sb:ser:01'])
        if args and args[0].startswith('{v}:c:'):
            args[0] = '{v}:c:S%s%02d' % (name.upper(), n)
        if fn == 'voucher_reserve' and args:
            args.insert(1, rnd.choice(['60000', '60000', '5000', '999']))
        cmd = ['FCALL', fn + '_' + LIB_VER, 2] + args[:1] + [bit] + args[1:]
        return {w: cmd for w in servers}
    fn = 'voucher_rollback' if y < 0.85 else 'voucher_release'
    labels = sorted(set(maps['L'].m.values()))
    label = rnd.choice(labels) if labels else b'<none>'
    idem = rnd.choice(['', 'B%d' % rnd.randrange(20)])
    out = {}
    for w in servers:
        raw = [k for k, v in maps[w].m.items() if v == label]
        rid = raw[0].decode() if raw else '1-1'
        tail = [rid, '', idem] if fn == 'voucher_rollback' else [rid, idem]
        out[w] = ['FCALL', fn + '_' + LIB_VER, 1, '{v}:log'] + tail
    return out


def gen_code(rnd, now):
    global ALL_CODES
    if ALL_CODES is None:
        ALL_CODES = ([c for c, _ in codes(now)] + [c for _, c, _ in COMPACT]
                     + ['NOCAMP', 'STRKEY', 'NOREV', 'BADCP', 'EMPTYK',
                        'NOPE', 'cp1'] + AUTO_CODES)
    return rnd.choice(ALL_CODES)


def gen_amount(rnd):
    if rnd.random() < 0.95:
        return rnd.choice(['0', '1', '500', '999', '1000', '5000', '12000',
                           '100000', '0012000', str(MAXINT), '127', '128',
                           '255', '256', '65535', '65536', '4294967295',
                           '4294967296',
                           str(MAXINT - 1), '4503599627370497'])
    return rnd.choice(['x', '', str(MAXINT + 1), '-1', '1.0', ' 1',
                       '99999999999999999999'])


def gen_items(rnd):
    items = []
    for _ in range(rnd.choice([0, 0, 0, 1, 2, 3])):
        items += [rnd.choice(SKUS), rnd.choice(CATS),
                  rnd.choice(['0', '100', '1500', '3000', str(MAXINT),
                              '3000000000']),
                  rnd.choice(['1', '2', '5', '0', '3000000'])]
    if rnd.random() < 0.02:
        items += ['SKU1', 'tea', rnd.choice(['-1', 'x', '']), '1']
    return items


def gen_eval(rnd, i, now, redeem, hist):
    """[key, args...] of a validate or redeem"""
    code = gen_code(rnd, now)
    cust = rnd.choice(CUSTOMERS)
    pts = rnd.random() < 0.2
    if rnd.random() < (0.5 if pts else 0.1):
        # codes that pass, for the members of the programme: tiers and
        # points paying get to decide
        code = rnd.choice(['HAMT0', 'HPCT100', 'HTIERG', 'HTIERBS', 'HTIERX',
                           'HGIFT', 'HFIX', 'HPCT', 'HAMT', 'HBIG', 'HCHAN',
                           'HCHANP', 'MAUTOP', 'HPERD', 'HPERM', 'HCOND',
                           'HBXGY', 'HBXGYP', 'HSTEPS', 'HSHIP']
                          + AUTO_CODES)
        cust = rnd.choice([m for m, _, _ in MEMBERS] + ['dave x'])
    key = '{v}:c:' + code
    idem = ''
    if redeem:
        x = rnd.random()
        if x < 0.5:
            idem = 'I%d' % rnd.randrange(400)
        elif x < 0.6:
            idem = 'K' + 'k' * rnd.randrange(100)
    elif rnd.random() < 0.1:
        idem = 'I1'
    oid = rnd.choice(['', 'o1', 'o2', 'order-' + 'x' * 90])
    items = gen_items(rnd)
    n = len(items) // 4
    args = [key, cust, gen_amount(rnd), rnd.choice(['', 'THB', 'USD']),
            oid, idem, str(n)] + items
    if rnd.random() < 0.15:
        # business data for conditions: the module hands it over
        args.append(rnd.choice(METAS))
    if pts:
        # loyalty points paying with it (before any limit)
        args.append(rnd.choice(POINTS[:5] * 3 + POINTS))
    x = rnd.random()
    if x < 0.01:
        args[6] = str(n + 1)
    elif x < 0.02:
        args[6] = rnd.choice(['x', '', '-1', '00', str(MAXINT)])
    elif x < 0.03:
        args[0] = rnd.choice(['v:c:' + code, '{v}:c:', '{}:c:X', '{v}:k:X',
                              '{v:c:X', '{v}c:X', '{v}:c:' + code + '\n'])
    elif x < 0.04:
        args = args[:rnd.randrange(1, len(args))]
    elif x < 0.06:
        # limits: answered by the library (or natively, when supported)
        # (times far longer than a seed runs: the three servers see each
        # call a few ms apart)
        for _ in range(rnd.choice([1, 1, 2])):
            args += [rnd.choice(LIMITS)]
    return args


def gen_admin(rnd, now):
    """an admin call sent the same way to all servers"""
    camps = list(campaigns(now))
    x = rnd.random()
    if x < 0.5:
        c = rnd.choice(camps + ['ghost'])
        f = rnd.choice([
            ['status', rnd.choice(['active', 'paused', 'archived'])],
            ['cap', rnd.choice(['0', '100', '1000'])],
            ['min_amount', rnd.choice(['0', '2000'])],
            ['max_redemptions', rnd.choice(['0', '3', '100'])],
            ['per_customer', rnd.choice(['0', '1', '3'])],
            ['currency', rnd.choice(['', 'THB'])],
            ['include_skus', rnd.choice(['', 'SKU1', 'SKU2,SKU3'])],
            ['tiers', rnd.choice(['', 'gold', 'base,gold', 'silver'])],
            ['channels', rnd.choice(['', 'web', 'app,pos'])],
            ['stacking', rnd.choice(['exclusive', 'combinable'])],
            ['stack_category', rnd.choice(['', 'food', 'ship'])],
            ['stack_priority', rnd.choice(['0', '1', '9'])],
            ['stack_cap', rnd.choice(['0', '50', '100000'])],
            ['auto_apply', rnd.choice(['0', '1'])],
            ['kind', rnd.choice(['percent', 'amount', 'gift_card',
                                 'fixed_price'])],
            ['value', rnd.choice(['0', '10', '500', '10000'])],
            ['customer_uses_per', rnd.choice(['', 'day:1', 'week:3',
                                              'month:2', 'year:1'])],
            ['customer_amount_per', rnd.choice(['', 'day:300',
                                                'month:1000'])],
            ['customer_amount_max', rnd.choice(['', '0', '500'])],
            ['conditions', rnd.choice(['', 'order.channel eq web',
                                       'customer.branch in BKK1,BKK2'])],
            ['steps', rnd.choice(['', '500:50,2000:300', '10:20'])],
            ['kind', rnd.choice(['steps', 'free_shipping',
                                 'buy_x_get_y'])],
        ])
        return ['FCALL', 'voucher_campaign_set', 1, '{v}:k:' + c] + f
    if x < 0.7:
        code = gen_code(rnd, now)
        f = rnd.choice([
            ['status', rnd.choice(['active', 'disabled'])],
            ['max_uses', rnd.choice(['', '0', '1', '5'])],
            ['customer', rnd.choice(['alice', 'bob'])],
            ['campaign', rnd.choice(camps)],
        ])
        return ['FCALL', 'voucher_code_set', 1, '{v}:c:' + code] + f
    if x < 0.8:
        f = rnd.choice(['idem_ttl', 'stream_maxlen'])
        v = rnd.choice(['0', '1', '30', '600', '86400'])
        if f == 'idem_ttl' and v == '1':
            # a record living 1 s may end between two servers' calls of
            # one op (a slow call on a loaded machine): 30 s outlives a seed
            v = '30'
        return ['FCALL', 'voucher_settings_set', 1, '{v}:cfg', f, v]
    if x < 0.9:
        # raw values the library reads with tonumber(): counters and
        # code fields are never cached
        code = gen_code(rnd, now)
        return rnd.choice([
            ['HSET', '{v}:k:' + rnd.choice(camps),
             rnd.choice(['redeemed', 'discount_given']),
             rnd.choice(ODD_NUMBERS)],
            ['HSET', '{v}:c:' + code, rnd.choice(['u', 'm', 'b', 'f', 't']),
             rnd.choice(ODD_NUMBERS)],
            ['HSET', '{v}:u:' + rnd.choice(CUSTOMERS[1:4]),
             rnd.choice(['k:pct', 'c:HPC', 'k:pc', 'c:CP6', 'c:HAMT',
                         'pu:perd', 'pa:perm', 'a:perm']),
             rnd.choice(ODD_NUMBERS + ['9223372036854775807', 'd1:1',
                                       'm9:x'])],
        ])
    # a campaign rewritten with a new rev and a stored value the library
    # may fail on
    c = rnd.choice(camps)
    return ['HSET', '{v}:k:' + c, 'rev', 'raw%d' % rnd.randrange(10 ** 9),
            rnd.choice(['hours', 'days', 'tz_offset', 'value', 'cap',
                        'tiers', 'channels', 'stacking', 'stack_category',
                        'stack_priority', 'stack_cap', 'auto_apply']),
            rnd.choice(['bad', '60-120', '', '1234567', '1.5', '-',
                        '0x20', '5', ',gold,', 'gold', ',base,', ',web,',
                        'combinable', '1e400', 'nan'])]


# gift cards: credits (some expiring within the seed), debits, redeems
# across an expiry, rollbacks (a part or all) of their redemptions
GIFT_CODES = ['HGIFT', 'GIFT2', 'GIFT0', 'GIFTBIG', 'HGIFTNV', 'MGIFT',
              'AGIFT', 'CP7', 'HPCT', 'NOPE']


def gen_gift_admin(rnd, now, i, expiries):
    """a gift-card call of the library (op i), sent the same way to all"""
    code = rnd.choice(GIFT_CODES)
    key = '{v}:c:' + code
    x = rnd.random()
    if x < 0.75:
        # a credit ending a second or two after this op (a seed runs
        # about 1000 ops a second), so redeems meet its end
        e = now + 1 + i // 1000 + rnd.randrange(0, 3)
        expiries.add(e)
        day = time.strftime('%Y-%m-%d', time.gmtime(now + 86400 * 3))
        exp = rnd.choice(['', '', '+0', '+1', day, '2020-01-01', 'x', '@1',
                          '+99999'] + ['@%d' % e] * 6)
        op = rnd.choice(['credit'] * 4 + ['debit', 'debit', 'DEBIT'])
        return ['FCALL', 'voucher_balance', 1, key, op,
                rnd.choice(['1', '50', '300', '700', '5000', '0', '-1',
                            str(MAXINT), 'x']),
                rnd.choice(['', '', 'g%d' % rnd.randrange(30)]),
                rnd.choice(['', 'top-up', 'ของขวัญ']), exp,
                rnd.choice(['', '', '+07:00', '-03:30', '+15:00', 'bad'])]
    if x < 0.85:
        return ['FCALL', 'voucher_gift_get', 1, key]
    if x < 0.93:
        return ['FCALL', 'voucher_gift_sweep', 1, '{v}:gx',
                str(now + rnd.randrange(0, 10)), rnd.choice(['1', '100'])]
    return ['FCALL', 'voucher_code_set', 1, key, 'balance',
            rnd.choice(['0', '100', '2000'])]


def gen_gift_eval(rnd, now):
    """a validate or redeem of a gift card"""
    args = ['{v}:c:' + rnd.choice(GIFT_CODES), rnd.choice(['', 'alice']),
            rnd.choice(['1', '100', '450', '999', '5000', '100000']),
            rnd.choice(['', 'THB']), 'o1',
            rnd.choice(['', '', 'G%d' % rnd.randrange(40)]), '0']
    return (rnd.choice(['voucher_redeem', 'voucher_redeem',
                        'voucher_validate']), args)


def time_guard(expiries):
    """waits while a credit's end (or a local midnight in any zone of a
    half hour, or a second's start) is this instant: the three servers,
    called a few ms apart, must all see it on one side (a gift card's
    credits of one second are one lot, of two seconds two)"""
    while True:
        t = time.time()
        near = [e for e in expiries if e - 0.03 <= t < e + 0.03]
        h = round(t / 1800) * 1800
        if h - 0.03 <= t < h + 0.03:
            near.append(h)
        s = round(t)
        if s - 0.02 <= t < s + 0.02:
            near.append(s)
        if not near:
            return
        time.sleep(max(near) + 0.03 - t)


def gen_cart(rnd, now):
    """a stack (validate or redeem) or a qualify, sent to every server
    as FCALL: the library's own, whose writes the native calls then read"""
    cust = rnd.choice(CUSTOMERS[:4] + [m for m, _, _ in MEMBERS])
    items = gen_items(rnd)
    order = [cust, rnd.choice(['0', '1000', '5000', '12000', '100000']),
             rnd.choice(['', 'THB']), rnd.choice(['', 'o1', 'o9']), '',
             str(len(items) // 4)] + items
    pool = (['HAMT', 'HPCT', 'HCHAN', 'HCHANP', 'MCHAN', 'ACHAN', 'HGIFT',
             'MAUTOP', 'HFIX', 'HPC', 'CP1', 'CP6', 'HMAXRED'] + AUTO_CODES)
    named = rnd.sample(pool, rnd.choice([0, 1, 1, 2, 2, 3]))
    channel = rnd.choice(['', '', 'web', 'app', 'pos'])
    if rnd.random() < 0.25:
        return ['FCALL_RO', 'voucher_qualify', 1, '{v}:public', channel,
                rnd.choice(['0', '1']), str(len(named))] + named + ['0'] \
            + order
    op = rnd.choice(['validate', 'redeem', 'redeem'])
    if op == 'redeem' and rnd.random() < 0.5:
        order[4] = 'S%d' % rnd.randrange(50)
    # loyalty points paying after the codes: the library's, whose spends
    # the native calls then read
    pts = [rnd.choice(POINTS)] if rnd.random() < 0.3 else []
    return ['FCALL', 'voucher_stack', 1, '{v}:log', op, '', channel,
            str(len(named))] + named + order + pts


def gen_loyalty(rnd, now):
    """the programme changed (only through voucher_loyalty_set: the
    library keeps it parsed until then), members earning and spending,
    raw member fields the hot path reads"""
    who = rnd.choice(CUSTOMERS[1:])
    x = rnd.random()
    if x < 0.25:
        f = rnd.choice([
            ['point_value', rnd.choice(['0', '1', '10', '250'])],
            ['status', rnd.choice(['active', 'paused'])],
            ['tiers', rnd.choice(['', 'base:0:100,gold:1000:150',
                                  'gold:0:100,base:10:100',
                                  'base:0:100,silver:300:125,'
                                  'gold:1000:150'])],
            ['every', rnd.choice(['1', '100'])],
        ])
        return ['FCALL', 'voucher_loyalty_set', 1, '{v}:lp'] + f
    if x < 0.5:
        return ['FCALL', 'voucher_loyalty_earn', 1, '{v}:lm:' + who,
                'o%d' % rnd.randrange(10 ** 9),
                rnd.choice(['100', '5000', '40000', '200000']), 0, now]
    if x < 0.75:
        return ['FCALL', 'voucher_loyalty_adjust', 1, '{v}:lm:' + who,
                rnd.choice(['+50', '+1000', '-20', '-5000']), 'fuzz', '',
                now]
    if x < 0.95:
        return ['HSET', '{v}:lm:' + who, rnd.choice(['tier', 'act']),
                rnd.choice(['gold', 'silver', 'base', '', 'GOLD', 'platinum']
                           + ODD_NUMBERS)]
    return ['SET', '{v}:lm:' + rnd.choice(['carol', 'dave x']), 'x']


# ---------------------------------------------------------------- compare

ID = re.compile(rb'\d{13}-\d+')
RETRY = re.compile(rb'(\$14\r\nretry_after_ms\r\n:)(\d+)')


def retry_ms(raw):
    """a refusal's retry_after_ms, a time: compared within a tolerance"""
    m = RETRY.search(raw)
    return (RETRY.sub(rb'\1<ms>', raw), int(m.group(2)) if m else 0)


# a reservation's deadline in seconds (ceil): the servers are called a
# few ms apart, so it may differ by one
HOLD_S = re.compile(rb'\r\n:(1[6-9]\d{8})\r\n')


def same_reply(outs):
    a = [retry_ms(outs[w]) for w in 'LMX']
    h = [[int(x) for x in HOLD_S.findall(x[0])] for x in a]
    a = [(HOLD_S.sub(b'\r\n:<s>\r\n', x[0]), x[1]) for x in a]
    return (a[0][0] == a[1][0] == a[2][0]
            and max(x[1] for x in a) - min(x[1] for x in a) <= 3000
            and all(abs(x - y) <= 1 for x, y in zip(h[0], h[1]))
            and all(abs(x - y) <= 1 for x, y in zip(h[0], h[2])))


class Mapper:
    def __init__(self):
        self.m = {}

    def __call__(self, raw):
        return ID.sub(lambda x: self.m.setdefault(
            x.group(0), b'<id%d>' % len(self.m)), raw)


def dump(srv, norm, holds_tolerance):
    r = srv.r
    out = {}
    for k in sorted(r.ok('KEYS', '*')):
        t = r.ok('TYPE', k)
        if t == 'none':
            continue                # expired since KEYS
        nk = norm(k)
        if t == 'hash':
            h = r.ok('HGETALL', k)
            d = dict(zip(h[::2], h[1::2]))
            d.pop(b'rev', None)
            if b'x' in d and b':c:' in k:
                d[b'x'] = lots(d[b'x'])
            v = sorted((norm(a), norm(b)) for a, b in d.items())
            at = d.get(b'at')
            if at and at.isdigit():
                # a loyalty order's "at": Redis' clock (s), like a TTL
                v = ('hashat', [x for x in v if x[0] != b'at'],
                     int(at) * 1000)
        elif t == 'string':
            g = r.ok('GET', k)
            if g is None:
                continue            # expired since KEYS
            ttl = r.ok('PTTL', k)
            if ttl == -2:
                continue            # expired between GET and PTTL
            if b':rt:' in k:
                # a rate's TAT (us, hex): a time, like a TTL
                v = ('tat', int(g, 16) // 1000, ttl)
            elif b':gs:' in k:
                v = ('str', lots(g), ttl)
            elif b':i:h:' in k and len(g) > 5 and g[-5] == 0xce:
                # a reservation's record ends with its deadline (s)
                v = ('tat', norm(g[:-5]),
                     int.from_bytes(g[-4:], 'big') * 1000, ttl)
            else:
                v = ('str', norm(g), ttl)
        elif t == 'stream' and b':lh:' in k:
            # a member's ledger: "at" is Redis' clock (seconds) where a
            # checkout spent points, compared like a TTL
            es, ats = [], []
            for e in r.ok('XRANGE', k, '-', '+'):
                f = [norm(x) for x in e[1]]
                for j in range(0, len(f) - 1, 2):
                    if f[j] == b'at':
                        ats.append(int(f[j + 1]) * 1000)
                        f[j + 1] = b'<at>'
                # (its entries' ids are times no reply shows)
                es.append((b'<entry>', f))
            v = ('ledger', es, ats)
        elif t == 'stream' and b':gl:' in k:
            # a gift card's ledger: its entries' ids are times no reply
            # shows (their refs are redemption ids, which replies do)
            v = [(b'<entry>', [norm(x) for x in e[1]])
                 for e in r.ok('XRANGE', k, '-', '+')]
        elif t == 'stream':
            v = [(norm(e[0]), [norm(x) for x in e[1]])
                 for e in r.ok('XRANGE', k, '-', '+')]
        elif t == 'zset':
            z = r.ok('ZRANGE', k, 0, -1, 'WITHSCORES')
            v = ('zset', [(norm(a), int(float(b))) for a, b in
                          zip(z[::2], z[1::2])])
        elif t == 'set':
            # (DUMP's bytes keep an order the set does not have)
            v = ('set', sorted(norm(m) for m in r.ok('SMEMBERS', k)))
        else:
            v = (t, r.ok('DUMP', k))
        out[nk] = v
    return out


def lots(x):
    """a gift card's lots "t:e:a ..." without the seconds they were
    credited at (Redis' clock, a second apart on two servers), so as the
    sums by expiry: credits of one second are one lot, of two seconds two,
    which spend alike"""
    by = {}
    for tok in x.split():
        part = tok.split(b':')
        if len(part) != 3 or not part[2].lstrip(b'-').isdigit():
            return re.sub(rb'(^| )\d+:', rb'\1<t>:', x)
        by[part[1]] = by.get(part[1], 0) + int(part[2])
    return b' '.join(b'<t>:%s:%d' % (e, a) for e, a in sorted(by.items()))


def lots_reply(v):
    """voucher_gift_get's "lots" array as lots() puts them"""
    m = re.search(rb'\$4\r\nlots\r\n\*(\d+)\r\n', v)
    if not m:
        return v
    n, at = int(m.group(1)), m.end()
    by = {}
    for _ in range(n):
        lm = re.compile(rb'\*3\r\n:-?\d+\r\n:(-?\d+)\r\n:(-?\d+)\r\n'
                        ).match(v, at)
        if not lm:
            return v
        by[int(lm.group(1))] = by.get(int(lm.group(1)), 0) + int(lm.group(2))
        at = lm.end()
    out = b'*%d\r\n' % len(by) + b''.join(
        b'*3\r\n:<t>\r\n:%d\r\n:%d\r\n' % (e, a)
        for e, a in sorted(by.items()))
    return v[:m.start()] + b'$4\r\nlots\r\n' + out + v[at:]


def same_value(a, b, tol_ms):
    # a key about to expire may be gone by the time the next server is
    # dumped
    for x, y in ((a, b), (b, a)):
        if (y is None or y == ('none', None)) and isinstance(x, tuple) \
                and x[0] in ('str', 'tat') and 0 <= x[-1] <= tol_ms:
            return True
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        if a[0] == 'str':
            return a[1] == b[1] and abs(a[2] - b[2]) <= tol_ms
        if a[0] == 'hashat':
            return a[1] == b[1] and abs(a[2] - b[2]) <= tol_ms
        if a[0] == 'tat' and len(a) == 4:
            return (a[1] == b[1] and abs(a[2] - b[2]) <= tol_ms
                    and abs(a[3] - b[3]) <= tol_ms)
        if a[0] == 'tat':
            return abs(a[1] - b[1]) <= tol_ms and abs(a[2] - b[2]) <= tol_ms
        if a[0] == 'ledger':
            return (a[1] == b[1] and len(a[2]) == len(b[2]) and all(
                abs(x - y) <= tol_ms for x, y in zip(a[2], b[2])))
        if a[0] == 'zset':
            return (len(a[1]) == len(b[1]) and all(
                x[0] == y[0] and abs(x[1] - y[1]) <= tol_ms
                for x, y in zip(a[1], b[1])))
    return a == b


# ---------------------------------------------------------------- the run

# the library's version, whose functions the hot calls name
LIB_VER = ''

HOT = {'voucher_validate': 'VOUCHER.VALIDATE',
       'voucher_validate_limited': 'VOUCHER.VALIDATE_LIMITED',
       'voucher_guess': 'VOUCHER.GUESS',
       'voucher_redeem': 'VOUCHER.REDEEM',
       'voucher_reserve': 'VOUCHER.RESERVE',
       'voucher_confirm': 'VOUCHER.CONFIRM',
       'voucher_release': 'VOUCHER.RELEASE',
       'voucher_rollback': 'VOUCHER.ROLLBACK'}

# reservations: short ones expire while a seed runs (real expiries: Redis
# 7.0 has no clock to fake), so no call is made within MARGIN s of a
# deadline, where the three servers, called ms apart, could disagree
# (at least 50 ms, and four times the slowest of the last operations: a
# loaded box, or ASan, makes one take longer)
MARGIN = [0.05]
HOLDS = []              # (earliest, latest) deadline, wall clock
SPANS = []              # how long the last operations took


def hold_wait():
    m = max([MARGIN[0]] + [4 * x for x in SPANS[-50:]])
    t = time.time()
    for lo, hi in sorted(HOLDS):
        if lo - m <= t <= hi + m:
            time.sleep(hi + m - t)
            t = time.time()
    HOLDS[:] = [x for x in HOLDS if x[1] + m > t]
    return t


def gen_hold(rnd, now, held):
    """[fn, key, args...] of a reservation step"""
    y = rnd.random()
    if y < 0.4 or not held:
        args = gen_eval(rnd, 0, now, True, [])
        if len(args) > 5 and args[5][:1] == 'K' and rnd.random() < 0.5:
            args[5] = 'H%d' % rnd.randrange(20)
        hold = rnd.choice(['1000', '1500', '86400000', '86400000',
                           '600000'] + (['999', 'x', '86400001', '']
                                        if rnd.random() < 0.05 else []))
        return ['voucher_reserve', args[0], hold] + args[1:]
    rid = rnd.choice(held)
    if rnd.random() < 0.05:
        rid = rnd.choice(['0-1', 'x', '', '99999999999999-0'])
    idem = rnd.choice(['', '', '', 'S%d' % rnd.randrange(10)])
    key = '{v}:log'
    if rnd.random() < 0.03:
        key = rnd.choice(['{v}:hz', 'v:log', '{v}:log:'])
    if y < 0.7:
        extra = ['brief'] if rnd.random() < 0.8 else []
        if rnd.random() < 0.03:
            extra = rnd.choice([['x'], ['brief', 'brief']])
        return ['voucher_confirm', key, rid, idem] + extra
    if y < 0.85:
        return ['voucher_release', key, rid, idem]
    if y < 0.95:
        return ['voucher_rollback', key, rid,
                rnd.choice(['', '', '100', 'x']), idem]
    return ['voucher_sweep', rnd.choice(['{v}:hz', '{v}:hz', '{v}:log'])]

LIMITS = ['r3b9aca00:2:ip:1.2.3.4', 'r3b9aca00:0:ip:1.2.3.4', 'r1:0:ip:z',
          'l3:3600000:3600000:ip:k', 'l1:3600000:3600000:ip:k2',
          'R3b9aca00:0:ip:x', 'L2:3600000:3600000:ip:y', 'bad', 'r0:1:n:k',
          'r:1:n:k', 'rg:1:n:k', 'l0:1:1:n:k', 'r3b9aca00:2::k',
          'r3b9aca00:2:ip', 'rFFFFFFFFFFFFFFFFFFFF:1:n:k',
          'l3:3600000:3600000:ip:k\x00:z', 'r5F5E100:1:cust:alice']


def run_seed(seed, nops, servers, lib, native, log):
    rnd = random.Random(seed)
    now = int(servers['L'].r.ok('TIME')[0])
    global ALL_CODES
    ALL_CODES = None
    rep = servers.get('R')
    servers = {w: s for w, s in servers.items() if w != 'R'}
    for s in servers.values():
        setup(s, lib, now, seed)
    if seed % 2:
        for s in servers.values():
            s.r.ok('FCALL', 'voucher_settings_set', 1, '{v}:cfg',
                   'stream_maxlen', 40, 'idem_ttl', 600)
    if seed % 5 == 0 and native:
        # a hold the module made, due, then a call the library answers:
        # its sweep must give it back, whatever it had seen of the set
        for s in servers.values():
            s.r.ok('FCALL', 'voucher_sweep_' + LIB_VER, 1, '{v}:hz')
        for w, s in servers.items():
            a = ['{v}:c:HAMT', '1000', '', '10000', 'THB', '', '', '0']
            if w == 'L':
                s.r.call('FCALL', 'voucher_reserve_' + LIB_VER, 1, *a)
            else:
                s.r.call('VOUCHER.RESERVE', *a)
        time.sleep(1.1)
        for s in servers.values():
            s.r.call('FCALL', 'voucher_redeem_' + LIB_VER, 1, '{v}:c:HPCT',
                     '', '10000', '', '', '', '0')
    maps = {w: Mapper() for w in servers}
    hist = []
    held = {w: [] for w in servers}         # reservation ids, each side's
    held_l = []                             # L's, in the order made
    counts = {}
    expiries = set()
    gift_ids = []
    servers = {w: s for w, s in servers.items() if w != 'R'}
    for i in range(nops):
        x = rnd.random()
        if SPANS and len(SPANS) > 100:
            del SPANS[:50]
        # away from a credit's end, a second's start and a hold's deadline
        # at once: until neither wait has to sleep
        while True:
            t_in = time.time()
            time_guard(expiries)
            t_op = hold_wait()
            if t_op - t_in < 0.002:
                break
        # a fifth are holds; the rest, spread over [0, 1) again
        hold = x < 0.2
        if not hold:
            x = (x - 0.2) / 0.8
        gift = None
        if not hold and 0.08 <= x < 0.14:
            y = rnd.random()
            if y < 0.4:
                gift = gen_gift_eval(rnd, now)
            elif y < 0.55 and gift_ids:
                # a rollback of a gift card's redemption: each server's id
                p = rnd.choice(gift_ids)
                amt = rnd.choice(['', '1', '50', '300', '100000'])
                idem = rnd.choice(['', 'B%d' % rnd.randrange(20)])
                outs = {}
                for w, s in servers.items():
                    raw = {v: k for k, v in maps[w].m.items()}[p]
                    outs[w] = s.r.call('FCALL', 'voucher_rollback', 1,
                                       '{v}:log', raw, amt, idem)[0]
                what = ['voucher_rollback', p, amt, idem]
                kind = '(gift)'
            else:
                cmd = gen_gift_admin(rnd, now, i, expiries)
                outs = {w: s.r.call(*cmd)[0] for w, s in servers.items()}
                what = cmd
                kind = '(gift)'
        if hold:
            step = gen_hold(rnd, now, held_l)
            fn, args = step[0], step[1:]
            if fn != 'voucher_reserve' and len(args) > 1 and args[1] in held_l:
                # the same reservation on each side (ids are times)
                j = held_l.index(args[1])
            else:
                j = None
            outs = {}
            t0 = time.time()
            for w, s in servers.items():
                a = list(args)
                if j is not None:
                    a[1] = held[w][j]
                nat = native and fn in HOT and (
                    w == 'M' or (w == 'X' and rnd.random() < 0.5))
                if nat:
                    raw, _ = s.r.call(HOT[fn], *a)
                else:
                    raw, _ = s.r.call('FCALL', fn + '_' + LIB_VER, 1, *a)
                outs[w] = raw
            t1 = time.time()
            if fn == 'voucher_reserve':
                ids = {w: ID.findall(outs[w]) for w in servers}
                if all(len(ids[w]) == 1 for w in servers):
                    for w in servers:
                        held[w].append(ids[w][0].decode())
                    held_l.append(held['L'][-1])
                    if args[1] in ('1000', '1500'):
                        ms = int(args[1]) / 1000
                        HOLDS.append((t0 + ms, t1 + ms))
            what = step
            kind = fn
        elif gift is None and 0.08 <= x < 0.14:
            pass
        elif x < 0.03:
            cmds = gen_serial(rnd, i, now, hist, maps, servers)
            outs = {w: s.r.call(*cmds[w])[0] for w, s in servers.items()}
            what = cmds['L']
            kind = '(serial) ' + cmds['L'][1].rsplit('_', 1)[0]
        elif x < 0.08:
            cmd = (gen_admin(rnd, now) if x < 0.05 else gen_loyalty(rnd, now)
                   if x < 0.065 else gen_cart(rnd, now))
            outs = {w: s.r.call(*cmd)[0] for w, s in servers.items()}
            what = cmd
            kind = '(admin)'
        else:
            if gift:
                fn, args = gift
            elif hist and rnd.random() < 0.08:
                fn, args = rnd.choice(hist)
                if rnd.random() < 0.3 and len(args) > 2:
                    args = list(args)
                    args[2] = rnd.choice(['1', '999', '5000'])  # conflict
            else:
                y = rnd.random()
                fn = ('voucher_redeem' if y < 0.55 else 'voucher_validate'
                      if y < 0.85 else 'voucher_validate_limited'
                      if y < 0.95 else 'voucher_guess')
                args = gen_eval(rnd, i, now, fn == 'voucher_redeem', hist)
                if fn == 'voucher_validate_limited' and rnd.random() < 0.8:
                    args += [rnd.choice(LIMITS)
                             for _ in range(rnd.choice([1, 1, 2, 3]))]
                elif fn == 'voucher_guess':
                    args = args[:1] + [rnd.choice(LIMITS) for _ in
                                       range(rnd.choice([0, 1, 1, 2, 3]))]
                if fn == 'voucher_redeem' and len(args) > 5 and args[5]:
                    hist.append((fn, args))
            outs = {}
            for w, s in servers.items():
                nat = native and fn in HOT and (
                    w == 'M' or (w == 'X' and rnd.random() < 0.5))
                if nat:
                    raw, _ = s.r.call(HOT[fn], *args)
                else:
                    # by the versioned name nginx calls (VOUCHER_FN)
                    raw, _ = s.r.call('FCALL', fn + '_' + LIB_VER,
                                      1 if args else 0, *args)
                outs[w] = raw
            what = [fn] + args
            kind = ('(gift) ' if gift else '') + fn
        SPANS.append(time.time() - t_op)
        normed = {w: maps[w](outs[w]) for w in outs}
        if what[:2] == ['FCALL', 'voucher_gift_get']:
            # a lot's credited_at: Redis' clock, a second apart at times
            normed = {w: lots_reply(v) for w, v in normed.items()}
        if gift and gift[0] == 'voucher_redeem':
            gift_ids += re.findall(rb'<id\d+>', normed['L'])[:1]
        m = re.match(rb'\*\d+\r\n\$\d+\r\n([^\r]*)', normed['L'])
        reason = (m.group(1) if m else normed['L'][:24]).decode('latin1')
        key = kind + ' ' + reason
        if kind != '(admin)' and any(a in POINTS for a in what):
            key += ' (points)'
        counts[key] = counts.get(key, 0) + 1
        if not same_reply(normed):
            log('DIFF seed %d op %d: %r' % (seed, i, what))
            for w in servers:
                log('  %s %r' % (w, normed[w][:600]))
            return False, counts
        if rep and os.environ.get('NATIVE_DIFF_REPLICA_EACH'):
            # (slow) the replica after every call
            servers['M'].r.ok('WAIT', 1, 5000)
            a = dump(servers['M'], lambda x: x, 0)
            b = dump(rep, lambda x: x, 0)
            bad = [k for k in sorted(set(a) | set(b))
                   if not same_value(a.get(k), b.get(k), 3000)]
            if bad:
                log('REPLICA differs after op %d: %r' % (i, what))
                for k in bad[:3]:
                    log('  %r\n    M %r\n    R %r' % (k, a.get(k), b.get(k)))
                return False, counts
        for w, s in servers.items():
            if not s.alive():
                log('seed %d op %d: redis-server %s died, see %s'
                    % (seed, i, w, s.dir))
                return False, counts
    # the replica of M, without the module, holds what M holds
    if rep:
        servers['M'].r.ok('WAIT', 1, 5000)
        a = dump(servers['M'], lambda x: x, 3000)
        b = dump(rep, lambda x: x, 3000)
        bad = [k for k in sorted(set(a) | set(b))
               if not same_value(a.get(k), b.get(k), 3000)]
        if bad:
            log('DIFF seed %d: %d keys differ between M and its replica'
                % (seed, len(bad)))
            for k in bad[:3]:
                log('  M %r: %r\n  R %r: %r' % (k, a.get(k), k, b.get(k)))
            return False, counts
    d = {w: dump(s, maps[w], 3000) for w, s in servers.items() if w != 'R'}
    keys = set(d['L']) | set(d['M']) | set(d['X'])
    bad = [k for k in sorted(keys)
           if not (same_value(d['L'].get(k), d['M'].get(k), 3000)
                   and same_value(d['L'].get(k), d['X'].get(k), 3000))]
    if bad:
        log('DIFF seed %d: %d keys differ at the end' % (seed, len(bad)))
        for k in bad[:3]:
            for w in servers:
                log('  %s %r: %r' % (w, k, d[w].get(k)))
        return False, counts
    return True, counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seed', type=int)
    ap.add_argument('--seeds', type=int, default=0)
    ap.add_argument('--seconds', type=float, default=0)
    ap.add_argument('--ops', type=int, default=3000)
    ap.add_argument('--module', default=os.path.join(
        ROOT, 'build', 'redis-module', 'voucher.so'))
    ap.add_argument('--lib', help='a library file (default: what '
                    'scripts/gen-lua joins from redis/lib/)')
    ap.add_argument('--san', action='store_true')
    ap.add_argument('--no-native', action='store_true',
                    help='all three on FCALL (checks the harness itself)')
    ap.add_argument('-v', '--verbose', action='store_true')
    a = ap.parse_args()

    env = dict(os.environ)
    module = a.module
    if a.san:
        module = module.replace('voucher.so', 'voucher-san.so')
        lib = subprocess.run(['gcc', '-print-file-name=libasan.so'],
                             capture_output=True, text=True).stdout.strip()
        env['LD_PRELOAD'] = lib
        env['ASAN_OPTIONS'] = 'detect_leaks=0:abort_on_error=1'
        env['UBSAN_OPTIONS'] = 'print_stacktrace=1:halt_on_error=1'
    global LIB_VER
    lib, ver = library_text(a.lib)
    LIB_VER = ver.decode()

    work = tempfile.mkdtemp(prefix='native-diff-')
    servers = {}

    def log(s):
        print(s, flush=True)

    ok = True
    try:
        for w in 'LMX':
            servers[w] = Server(w, module, work, env)
        servers['R'] = Server('R', None, work, env,
                              replicaof=servers['M'].port)
        for _ in range(500):
            if 'master_link_status:up' in servers['R'].r.ok(
                    'INFO', 'replication').decode():
                break
            time.sleep(0.02)
        start = time.time()
        seed = a.seed if a.seed is not None else int(time.time() * 1000) % 10 ** 9
        n = 0
        total = {}
        while True:
            try:
                good, counts = run_seed(seed, a.ops, servers, lib,
                                        not a.no_native, log)
            except (OSError, EOFError, RuntimeError) as e:
                log('seed %d: %s' % (seed, e))
                good, counts = False, {}
            n += 1
            for k, v in counts.items():
                total[k] = total.get(k, 0) + v
            if not good:
                log('native_diff: FAILED at seed %d (replay: %s --seed %d'
                    ' --ops %d)' % (seed, sys.argv[0], seed, a.ops))
                ok = False
                break
            if a.verbose:
                log('seed %d: %d ops, same' % (seed, a.ops))
            if a.seed is not None and not a.seeds:
                break
            if a.seeds and n >= a.seeds:
                break
            if a.seconds and time.time() - start >= a.seconds:
                break
            if not a.seeds and not a.seconds:
                break
            seed += 1
        if ok:
            log('native_diff: %d seeds x %d ops, replies and keyspace the same'
                ' (%.0fs)' % (n, a.ops, time.time() - start))
            log('  outcomes: ' + ', '.join(
                '%s %d' % kv for kv in sorted(total.items(),
                                             key=lambda kv: -kv[1])))
    finally:
        for s in servers.values():
            s.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log('native_diff: server logs in ' + work)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
