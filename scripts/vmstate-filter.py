#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Cut a `qemu-system-x86_64 -dump-vmstate FILE` dump down to what the
# ivshmem devices put in the migration stream, for QEMU's
# scripts/vmstate-static-checker.py:
#
#   vmstate-filter.py IN OUT
#
# keeps the "vmschkmachine" entry (the checker compares machine types)
# and the ivshmem-plain and ivshmem-doorbell sections, and fails if any
# of them is missing.  Output is indented, with sorted keys, so that two
# filtered dumps diff line by line.
#
#   vmstate-filter.py --mutate KIND IN OUT
#
# also changes the stream in one known way, for the check's negative
# controls (scripts/check-vmstate.sh): the checker must reject each.

import argparse
import copy
import json
import sys

KEEP = ('vmschkmachine', 'ivshmem-plain', 'ivshmem-doorbell')


def fields(dump, section):
    return dump[section]['Description']['Fields']


def field(dump, section, name):
    for f in fields(dump, section):
        if f['field'] == name:
            return f
    raise KeyError('%s has no field %s' % (section, name))


def bump_version(d):
    d['ivshmem-plain']['version_id'] += 1
    d['ivshmem-plain']['Description']['version_id'] += 1


def drop_field(d):
    fl = fields(d, 'ivshmem-doorbell')
    fl.remove(field(d, 'ivshmem-doorbell', 'intrmask'))


def add_field(d):
    extra = copy.deepcopy(field(d, 'ivshmem-plain', 'intrmask'))
    extra['field'] = 'ivposition'
    fields(d, 'ivshmem-plain').append(extra)


def resize_field(d):
    field(d, 'ivshmem-plain', 'intrstatus')['size'] = 8


def add_subsection(d):
    d['ivshmem-doorbell']['Description']['Subsections'] = [{
        'name': 'ivshmem-doorbell/peer-id',
        'version_id': 1,
        'minimum_version_id': 1,
        'Fields': [copy.deepcopy(field(d, 'ivshmem-doorbell', 'intrmask'))],
    }]


def drop_struct_sizes(node):
    """
    Forget the size of every field that is a nested structure.  That size
    is the C struct's sizeof, which QEMU versions change (PCIDevice grew
    between 10.0 and 10.2) without a byte of the stream changing: what goes
    on the wire is the nested description, which stays.
    """
    if isinstance(node, dict):
        if 'Description' in node and 'field' in node:
            node.pop('size', None)
        for v in node.values():
            drop_struct_sizes(v)
    elif isinstance(node, list):
        for v in node:
            drop_struct_sizes(v)


MUTATIONS = {
    'version': bump_version,
    'drop-field': drop_field,
    'add-field': add_field,
    'resize-field': resize_field,
    'subsection': add_subsection,
}


def main():
    ap = argparse.ArgumentParser(description='Keep the ivshmem sections '
                                 'of a -dump-vmstate file.')
    ap.add_argument('--mutate', choices=sorted(MUTATIONS),
                    help='change the stream in this way (negative control)')
    ap.add_argument('--wire', action='store_true',
                    help='drop what the stream does not carry (struct sizes)')
    ap.add_argument('--list-mutations', action='store_true',
                    help='print the names --mutate accepts and exit')
    ap.add_argument('input', nargs='?')
    ap.add_argument('output', nargs='?')
    args = ap.parse_args()

    if args.list_mutations:
        print('\n'.join(sorted(MUTATIONS)))
        return 0
    if not args.input or not args.output:
        ap.error('IN and OUT are required')

    with open(args.input) as f:
        dump = json.load(f)
    missing = [k for k in KEEP if k not in dump]
    if missing:
        sys.stderr.write('vmstate-filter: %s has no %s\n'
                         % (args.input, ', '.join(missing)))
        return 1
    out = {k: dump[k] for k in KEEP}
    if args.wire:
        drop_struct_sizes(out)
    if args.mutate:
        MUTATIONS[args.mutate](out)
    with open(args.output, 'w') as f:
        json.dump(out, f, indent=2, sort_keys=True)
        f.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
