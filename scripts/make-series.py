#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Write the series as `git format-patch` files against the recorded base:
# commit by commit as scripts/series-plan.txt says, a cover letter, and
# checkpatch.pl run over every patch (an error fails).  Then check that the
# patches apply with `git am` to a fresh copy of the base.
#
#   make-series.py BASE_TREE OUTPUT_DIR WORK_DIR [FILES_DIR]
#
# FILES_DIR holds the series' files and patches/ (default: this clone);
# for a stable backport it is the tree scripts/ours.sh made.

import fnmatch
import glob
import os
import shutil
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = TOP
AUTHOR = 'ivshmem series <ivshmem-series@localhost>'
OUR_DIRS = ('hw', 'include', 'contrib', 'tests', 'docs')


def die(msg):
    sys.exit('make-series: ' + msg)


def run(args, cwd, **kw):
    return subprocess.run(args, cwd=cwd, check=True, text=True, **kw)


def parse_plan(path):
    commits, exclude, cur, in_body = [], [], None, False
    for line in open(path):
        line = line.rstrip('\n')
        if not in_body and (not line or line.startswith('#')):
            continue
        key, _, val = line.partition(':')
        if key == 'subject' and val:
            cur = {'subject': val.strip(), 'remove': [], 'files': [],
                   'patches': [], 'body': []}
            commits.append(cur)
            in_body = False
        elif in_body:
            cur['body'].append(line)
        elif key == 'exclude':
            exclude += val.split()
        elif key in ('remove', 'files', 'patches'):
            cur[key] += val.split()
        elif key == 'body':
            in_body = True
        else:
            die('plan: cannot parse %r' % line)
    for c in commits:
        c['body'] = '\n'.join(c['body']).strip()
    return commits, exclude


def our_files():
    out = []
    for d in OUR_DIRS:
        for root, _, names in os.walk(os.path.join(SRC, d)):
            for n in names:
                if not n.endswith('~') and not n.startswith('.'):
                    out.append(os.path.relpath(os.path.join(root, n), SRC))
    return sorted(out)


def assign_files(commits, exclude):
    """Every file of ours goes to exactly one commit, or is excluded."""
    owner = {}
    for f in our_files():
        if any(fnmatch.fnmatch(f, pat) for pat in exclude):
            continue
        hits = [i for i, c in enumerate(commits)
                if any(fnmatch.fnmatch(f, pat) for pat in c['files'])]
        if len(hits) != 1:
            die('%s belongs to %d commits of the plan, not one' % (f, len(hits)))
        owner.setdefault(hits[0], []).append(f)
    used = [p for c in commits for p in c['patches']]
    for p in sorted(os.listdir(os.path.join(SRC, 'patches'))):
        if p.endswith('.patch') and used.count(p) != 1:
            die('patches/%s is used %d times in the plan, not once'
                % (p, used.count(p)))
    for p in used:
        if not os.path.exists(os.path.join(SRC, 'patches', p)):
            die('the plan names patches/%s, which does not exist' % p)
    return owner


def base_repo(base):
    """A git repository of the pristine base, cached next to it."""
    repo = base.rstrip('/') + '.git-base'
    if os.path.exists(os.path.join(repo, '.complete')):
        return repo
    shutil.rmtree(repo, ignore_errors=True)
    shutil.copytree(base, repo, symlinks=True,
                    ignore=shutil.ignore_patterns('.pc', '.ivshmem-base-*'))
    run(['git', 'init', '-q'], repo)
    run(['git', 'add', '-A', '-f'], repo)
    run(['git', '-c', 'user.name=base', '-c', 'user.email=base@localhost',
         'commit', '-q', '-m', 'QEMU base'], repo)
    run(['git', 'tag', 'base'], repo)
    open(os.path.join(repo, '.complete'), 'w').close()
    return repo


def fresh_clone(repo, work):
    shutil.rmtree(work, ignore_errors=True)
    run(['git', 'clone', '-q', '--shared', repo, work], '.')
    for k, v in (('user.name', AUTHOR.split(' <')[0]),
                 ('user.email', AUTHOR.split('<')[1].rstrip('>'))):
        run(['git', 'config', k, v], work)


def make_commit(work, commit, files):
    for r in commit['remove']:
        run(['git', 'rm', '-r', '-q', r], work)
    for f in files:
        dst = os.path.join(work, f)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy(os.path.join(SRC, f), dst)
    for p in commit['patches']:
        with open(os.path.join(SRC, 'patches', p)) as f:
            r = subprocess.run(['patch', '-p1', '-s', '--no-backup-if-mismatch'],
                               cwd=work, stdin=f, capture_output=True, text=True)
        if r.returncode:
            die('patches/%s does not apply at "%s":\n%s'
                % (p, commit['subject'], r.stdout + r.stderr))
    run(['git', 'add', '-A'], work)
    msg = commit['subject'] + '\n\n' + commit['body'] + '\n'
    run(['git', 'commit', '-q', '-s', '-F', '-'], work, input=msg)


def cover_letter(out, commits, version):
    path = sorted(glob.glob(os.path.join(out, '0000-*.patch')))[0]
    text = open(path).read()
    text = text.replace('*** SUBJECT HERE ***',
                        'ivshmem: ivshmem-plain and ivshmem-doorbell, '
                        'set up synchronously, and a production server')
    blurb = open(os.path.join(TOP, 'scripts', 'series-cover.txt')).read()
    blurb += '\nBased on QEMU %s.\n' % version
    if os.environ.get('BASE', '10.2') != '10.2':
        blurb += ('This is the backport to QEMU %s of the series for QEMU '
                  '10.2: the same commits,\nwith only the API spellings of '
                  'this QEMU (backport/%s/ in the series\' repository).\n'
                  % (os.environ['BASE'], os.environ['BASE']))
    text = text.replace('*** BLURB HERE ***', blurb.strip())
    open(path, 'w').write(text)


def checkpatch(work, patches):
    failed = []
    for p in patches:
        r = subprocess.run(['perl', os.path.join(work, 'scripts', 'checkpatch.pl'),
                            '--no-tree', p], cwd=work, capture_output=True,
                           text=True)
        last = [l for l in r.stdout.splitlines() if l.startswith('total:')]
        print('  %s: %s' % (os.path.basename(p),
                            last[0] if last else 'no verdict'))
        if r.returncode:
            failed.append(p)
            print(r.stdout)
    return failed


def main():
    global SRC
    base, out, work = (os.path.abspath(a) for a in sys.argv[1:4])
    if len(sys.argv) > 4:
        SRC = os.path.abspath(sys.argv[4])
    commits, exclude = parse_plan(os.path.join(TOP, 'scripts', 'series-plan.txt'))
    owner = assign_files(commits, exclude)
    version = open(os.path.join(base, '.ivshmem-base-version')).read().strip() \
        if os.path.exists(os.path.join(base, '.ivshmem-base-version')) \
        else open(os.path.join(base, 'VERSION')).read().strip()
    repo = base_repo(base)

    fresh_clone(repo, work)
    for i, c in enumerate(commits):
        make_commit(work, c, owner.get(i, []))

    shutil.rmtree(out, ignore_errors=True)
    run(['git', 'format-patch', '-q', '--cover-letter', '-o', out, 'base..HEAD'],
        work)
    cover_letter(out, commits, version)
    patches = sorted(glob.glob(os.path.join(out, '0*.patch')))
    print('series: %d patches in %s, against QEMU %s' % (len(patches) - 1,
                                                         out, version))

    print('checkpatch:')
    failed = checkpatch(work, patches[1:])

    # The patches must apply to the pristine base with git am.
    check = work + '-am'
    fresh_clone(repo, check)
    r = subprocess.run(['git', 'am', '-q'] + patches[1:], cwd=check,
                       capture_output=True, text=True)
    shutil.rmtree(check, ignore_errors=True)
    if r.returncode:
        die('the series does not apply with git am:\n' + r.stdout + r.stderr)
    print('git am: the series applies to the base')
    if failed:
        die('checkpatch found errors in %d patches' % len(failed))
    return 0


if __name__ == '__main__':
    sys.exit(main())
