"""Where files come from: paths, inbox folders and platform exports, each file assigned to an athlete.

A folder is read like the inbox: files in `<folder>/<athlete>/...` belong to that athlete, files
directly in it to the default athlete.  Zip archives (and `.gz` files) are *sources* too: they are
expanded under limits into staged member files that flow through the same ingest as loose files,
each with a ledger path like `export.zip!activities/123.fit.gz`.  A Strava or Garmin export (zip or
unpacked folder) adds its metadata: tables decoded on their own, and labels for its activity files.
Symbolic links, FIFOs, sockets, devices, files the importer may not read and anything refused while
expanding are listed with a `refusal`, never skipped, and never opened for reading (a FIFO would
block); a hidden archive member is listed as `ignored`.  Ledger paths are `printable`: bytes that are
not UTF-8 and control characters escaped.
An object-store prefix (`s3://bucket/prefix`, `connectors/object_store.py`) is read like a folder:
each object is streamed into the staging folder under the size limit and goes on like a local file,
with its `s3://bucket/key` as the ledger path.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from retrostride.connectors import archives, garmin, strava
from retrostride.connectors.archives import Budget, Refused, Staging, ZipArchive
from retrostride.connectors.exports import Layout, detect_layout
from retrostride.connectors.limits import IntakeLimits
from retrostride.connectors.object_store import (  # noqa: F401 (Location, as_location: sources' names too)
    Location,
    ObjectStore,
    ObjectUrl,
    StoredObject,
    as_location,
    is_object_url,
)
from retrostride.connectors.platform_labels import PlatformLabels, write_labels
from retrostride.warehouse.profiles import AthleteProfile
from retrostride.warehouse.schema import DecodeError

DEFAULT_ATHLETE = "default"
#: Folder names platforms and operating systems add that hold nothing to import.
JUNK_FOLDERS = {"__MACOSX"}


@dataclass(frozen=True)
class SourceFile:
    """A file to import and the athlete it belongs to.

    `path` holds the bytes (a staged copy for an archive member or a `.gz`); `origin` is what the
    ledger calls it (default: `path`).  `kind` names a decoder chosen by the file's role in an export
    (None: sniff the bytes); `refusal` says why the file was refused while listing, `ignored` why it
    is deliberately not imported (a hidden member of an archive).
    """

    path: Path
    athlete_id: str
    origin: str | None = None
    kind: str | None = None
    refusal: str | None = None
    ignored: str | None = None
    labels: PlatformLabels | None = None
    modified_at: datetime | None = None

    @property
    def ledger_path(self) -> str:
        return printable(self.origin or str(self.path))


@dataclass(frozen=True)
class ExportOwners:
    """Whose an export is, as athletes.toml says: the athletes it names (an export folder named like
    one is theirs) and the Strava accounts of athletes (an export of that account is theirs, wherever
    it lies and whatever the command line says)."""

    athletes: frozenset[str] = frozenset()
    strava_accounts: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, profiles: Mapping[str, AthleteProfile]) -> ExportOwners:
        accounts = {p.strava_athlete_id: a for a, p in profiles.items() if p.strava_athlete_id}
        return cls(frozenset(profiles), accounts)

    def of_folder(self, parts: tuple[str, ...]) -> str | None:
        """The athlete of an unpacked export at `parts` (folders below the walked root): the athlete
        folder it lies in, or its own folder only when athletes.toml names that athlete, as for a
        zipped export (an export's own name, `export_123`, is no athlete)."""
        if len(parts) > 1:
            return parts[0]
        return parts[0] if parts and parts[0] in self.athletes else None

    def of_strava_export(self, profile: Path) -> str | None:
        """The athlete whose Strava account `profile` (the export's profile.csv) names, or None."""
        try:
            account = strava.read_account(profile)
        except DecodeError:
            return None
        return self.strava_accounts.get(account) if account else None


@contextmanager
def expanded_sources(
    paths: Iterable[Location],
    athlete_id: str | None,
    staging_root: Path,
    limits: IntakeLimits = IntakeLimits(),
    store: ObjectStore | None = None,
    owners: ExportOwners = ExportOwners(),
) -> Iterator[list[SourceFile]]:
    """Every source file under `paths`, archives expanded (and objects downloaded) into a staging
    folder removed afterwards.  Raises ObjectStoreError when an object store cannot be read."""
    folder = Path(staging_root) / uuid.uuid4().hex
    try:
        yield list(list_source_files(paths, athlete_id, staging=folder, limits=limits, store=store, owners=owners))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def list_source_files(
    paths: Iterable[Location],
    athlete_id: str | None = None,
    *,
    staging: Path | None = None,
    limits: IntakeLimits = IntakeLimits(),
    store: ObjectStore | None = None,
    owners: ExportOwners = ExportOwners(),
) -> Iterator[SourceFile]:
    """Every file under `paths` in a stable order, with its athlete (see the module docstring).

    Hidden files and folders (".name") of a folder are skipped.  Archives and `.gz` files need `staging`; without
    it they are listed as they are (and the decoder says what they are).  `s3://` URLs need it too.
    """
    expander = _Expander(Staging(staging), limits, owners) if staging is not None else None
    for root in paths:
        if is_object_url(root):
            if expander is None:
                raise ValueError(f"{root}: objects are imported through a staging folder")
            yield from _walk_objects(expander, store or ObjectStore(), ObjectUrl.parse(root), athlete_id)
            continue
        root = Path(root)
        if root.is_dir() and not root.is_symlink() or not os.path.lexists(root):
            yield from _walk(expander, root, athlete_id)
        else:
            yield from _loose(expander, root, athlete_id or DEFAULT_ATHLETE)


def count_source_files(
    paths: Iterable[Location], athlete_id: str | None = None, store: ObjectStore | None = None
) -> int:
    """Roughly how many files `list_source_files` yields, without expanding anything (zips count their
    entries; an object-store prefix counts its objects, zips among them as one)."""
    paths = list(paths)
    urls = [p for p in paths if is_object_url(p)]
    total = sum(len(list_objects(ObjectUrl.parse(u), store or ObjectStore())) for u in urls)
    for source in list_source_files([p for p in paths if p not in urls], athlete_id):
        total += 1
        if source.refusal is None and source.path.suffix.lower() == ".zip":
            try:
                with ZipArchive(source.path, IntakeLimits(), Budget(0)) as archive:
                    total += len(archive.members) - 1
            except Refused:
                pass
    return total


def _hidden(name: str) -> bool:
    """Hidden files and junk folders in an archive (".." is not hidden: it is refused, visibly)."""
    parts = name.replace("\\", "/").split("/")
    return any((p.startswith(".") and p not in (".", "..")) or p in JUNK_FOLDERS for p in parts)


def symlink_refusal(path: Path) -> str:
    return f"refused: symbolic link to {printable(os.readlink(path))} (only regular files are imported)"


#: File types that are not regular files, by `stat.S_IFMT`, as a refusal names them.
_FILE_TYPES = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
}


def file_refusal(path: Path) -> str | None:
    """Why a listed path cannot be imported as a file (a symbolic link, a FIFO, a socket, a device, no
    read permission), or None.  Opens without blocking and reads nothing: a FIFO never hangs a listing."""
    try:
        mode = path.lstat().st_mode
    except OSError as error:
        return f"refused: cannot be read ({(error.strerror or str(error)).lower()})"
    if stat.S_ISLNK(mode):
        return symlink_refusal(path)
    if not stat.S_ISREG(mode):
        return f"refused: not a regular file ({_FILE_TYPES.get(stat.S_IFMT(mode), 'an unknown kind')})"
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)))
    except PermissionError:
        return "refused: permission denied (the importer may not read this file)"
    except OSError as error:
        return f"refused: cannot be read ({(error.strerror or str(error)).lower()})"
    return None


def printable(name: str) -> str:
    """A path or name for the ledger and logs: bytes that are not UTF-8 (a file system hands them over
    as surrogates) and control characters escaped as `\\xNN`, so the row can be stored and read."""
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else _escaped(c) for c in name)


def _escaped(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's surrogateescape of a byte that is not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _walk(expander: _Expander | None, root: Path, athlete_id: str | None) -> Iterator[SourceFile]:
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        relative = here.relative_to(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in JUNK_FOLDERS)
        owner = athlete_id or (relative.parts[0] if relative.parts else None)
        tree = _FolderTree(here)
        if expander is not None and tree.layout.platform is not None:
            dirs.clear()  # the whole export folder is one source
            owner = athlete_id or expander.owners.of_folder(relative.parts)
            yield from expander.expand(tree, str(here), owner or DEFAULT_ATHLETE, depth=1, budget=expander.new_budget())
            continue
        for name in sorted(files + [d for d in dirs if (here / d).is_symlink()]):
            if name.startswith("."):
                continue
            if (here / name).is_symlink():
                dirs[:] = [d for d in dirs if d != name]
            yield from _loose(expander, here / name, owner or DEFAULT_ATHLETE)


def _loose(expander: _Expander | None, path: Path, athlete: str) -> Iterator[SourceFile]:
    """A file named in a listing: refused when it cannot be read as a regular file, else itself (or
    what it contains, when it is an archive and there is a staging folder)."""
    plain = SourceFile(path, athlete, origin=str(path), modified_at=_mtime(path))
    refusal = file_refusal(path)
    if refusal is not None or expander is None:
        yield replace(plain, refusal=refusal)
    else:
        yield from expander.dispatch(plain, path.name, depth=0, budget=expander.new_budget())


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except OSError:
        return None


def list_objects(url: ObjectUrl, store: ObjectStore) -> list[StoredObject]:
    """The objects under `url` that are imported: hidden ones (".name", `__MACOSX/`) left out, unless
    the URL names that one object."""
    listed = store.list(url)
    if len(listed) == 1 and listed[0].key == url.key:
        return listed
    return [o for o in listed if not _hidden(o.name)]


def _walk_objects(
    expander: _Expander, store: ObjectStore, url: ObjectUrl, athlete_id: str | None
) -> Iterator[SourceFile]:
    """The objects under `url` as `_walk` reads a folder: athlete folders, unpacked exports, archives."""
    objects = {o.name: o for o in list_objects(url, store)}
    if len(objects) == 1 and next(iter(objects.values())).key == url.key:  # the URL names one object
        [item] = objects.values()
        yield from _object(expander, store, url, item, athlete_id or DEFAULT_ATHLETE)
        return
    base = url.key if not url.key or url.key.endswith("/") else url.key + "/"
    exports = _export_folders(list(objects))
    expanded: set[str] = set()
    for name in sorted(objects, key=_walk_order):
        folder = next((f for f in exports if name.startswith(f)), None)
        if folder is None:
            owner = athlete_id or (name.split("/", 1)[0] if "/" in name else None) or DEFAULT_ATHLETE
            yield from _object(expander, store, url, objects[name], owner)
        elif folder not in expanded:  # the whole export folder is one source, as in `_walk`
            expanded.add(folder)
            owner = athlete_id or expander.owners.of_folder(tuple(folder.split("/")[:-1])) or DEFAULT_ATHLETE
            tree = _PrefixTree(
                store,
                url.bucket,
                {n[len(folder) :]: o for n, o in objects.items() if n.startswith(folder)},
                expander.limits,
            )
            origin = url.child(base + folder).rstrip("/")
            yield from expander.expand(tree, origin, owner, depth=1, budget=expander.new_budget())


def _walk_order(name: str) -> tuple:
    """os.walk's order: a folder's files (sorted) before its subfolders (sorted)."""
    *folders, file = name.split("/")
    return (*((1, f) for f in folders), (0, file))


def _export_folders(names: list[str]) -> list[str]:
    """The folders ("" or "a/b/") holding an unpacked export (activities.csv or DI_CONNECT/ in them),
    outermost only: like `_walk`, which stops at the first."""
    candidates = set()
    for name in names:
        parts = name.split("/")
        if parts[-1] == "activities.csv":
            candidates.add("".join(p + "/" for p in parts[:-1]))
        for index, part in enumerate(parts[:-1]):
            if part == "DI_CONNECT":
                candidates.add("".join(p + "/" for p in parts[:index]))
    found: list[str] = []
    for folder in sorted(candidates, key=lambda f: (f.count("/"), f)):
        if any(folder.startswith(outer) for outer in found):
            continue
        if detect_layout([n[len(folder) :] for n in names if n.startswith(folder)]).platform is not None:
            found.append(folder)
    return found


def _object(
    expander: _Expander, store: ObjectStore, url: ObjectUrl, item: StoredObject, athlete: str
) -> Iterator[SourceFile]:
    """One object, downloaded into staging (or refused), then read like a local file."""
    plain = SourceFile(Path(), athlete, origin=url.child(item.key), modified_at=item.modified_at)
    try:
        path = store.download(url.bucket, item, expander.staging, expander.limits.max_file_bytes)
    except Refused as refused:
        yield replace(plain, path=refused.partial or Path(), refusal=refused.reason)
        return
    yield from expander.dispatch(replace(plain, path=path), item.name, depth=0, budget=expander.new_budget())


class _PrefixTree:
    """An unpacked export under an object-store prefix, read like an export folder; each object is
    downloaded once, when the expansion asks for it."""

    hidden = ()  # left out by the listing

    def __init__(self, store: ObjectStore, bucket: str, objects: dict[str, StoredObject], limits: IntakeLimits):
        self.store, self.bucket, self.objects, self.limits = store, bucket, objects, limits
        self.names = sorted(objects)
        self.layout = detect_layout(self.names)
        self._staged: dict[str, Path] = {}

    def refusal(self, name: str) -> str | None:
        return None

    def stage(self, name: str, staging: Staging) -> Path:
        if name not in self._staged:
            self._staged[name] = self.store.download(
                self.bucket, self.objects[name], staging, self.limits.max_file_bytes
            )
        return self._staged[name]

    def modified_at(self, name: str) -> datetime | None:
        return self.objects[name].modified_at

    def close(self) -> None:
        pass


class _FolderTree:
    """An unpacked export folder, read like an archive."""

    hidden = ()  # hidden files of a folder are not listed, as in any other folder

    def __init__(self, folder: Path):
        self.folder = folder
        self._names: list[str] | None = None

    @property
    def names(self) -> list[str]:
        if self._names is None:
            self._names = (
                sorted(
                    p.relative_to(self.folder).as_posix()
                    for p in self.folder.rglob("*")
                    if (p.is_symlink() or not p.is_dir())
                    and not any(part.startswith(".") for part in p.relative_to(self.folder).parts)
                )
                if (self.folder / "activities.csv").exists() or (self.folder / "DI_CONNECT").exists()
                else []
            )
        return self._names

    @property
    def layout(self) -> Layout:
        return detect_layout(self.names)

    def refusal(self, name: str) -> str | None:
        return file_refusal(self.folder / name)

    def stage(self, name: str, staging: Staging) -> Path:
        return self.folder / name

    def modified_at(self, name: str) -> datetime | None:
        return _mtime(self.folder / name)

    def close(self) -> None:
        pass


class _ZipTree:
    """A zip archive, read member by member under limits."""

    def __init__(self, archive: ZipArchive):
        self.archive = archive
        self.by_name = {m.name: m for m in archive.members}
        self.names = [m.name for m in archive.members if not _hidden(m.name)]
        self.hidden = [m.name for m in archive.members if _hidden(m.name)]
        self.layout = detect_layout(self.names)

    def refusal(self, name: str) -> str | None:
        return self.archive.refusal(self.by_name[name])

    def stage(self, name: str, staging: Staging) -> Path:
        return self.archive.stage(self.by_name[name], staging)

    def modified_at(self, name: str) -> datetime | None:
        return self.by_name[name].modified_at

    def close(self) -> None:
        self.archive.close()


class _Expander:
    """Expands containers into source files, sharing one staging folder and the limits."""

    def __init__(self, staging: Staging, limits: IntakeLimits, owners: ExportOwners):
        self.staging, self.limits, self.owners = staging, limits, owners

    def new_budget(self) -> Budget:
        return Budget(self.limits.max_archive_bytes)

    def dispatch(self, source: SourceFile, name: str, *, depth: int, budget: Budget) -> Iterator[SourceFile]:
        """`source` itself, or what it contains when it is a zip or gzip file."""
        with open(source.path, "rb") as handle:
            head = handle.read(4)
        container = "zip" if archives.is_zip(head) else "gzip" if archives.is_gzip(head) else None
        if container is None or source.kind is not None:
            yield source
            return
        if depth >= self.limits.max_depth:
            yield replace(source, refusal=f"refused: {container} nested more than {self.limits.max_depth} levels deep")
            return
        budget.opening(source.path)
        if container == "gzip":
            try:
                inner = archives.gunzip(source.path, self.staging, name, self.limits, budget)
            except Refused as refusal:
                yield replace(source, path=refusal.partial or source.path, refusal=refusal.reason)
                return
            yield from self.dispatch(
                replace(source, path=inner), name.removesuffix(".gz"), depth=depth + 1, budget=budget
            )
            return
        try:
            tree = _ZipTree(ZipArchive(source.path, self.limits, budget))
        except Refused as refusal:
            yield replace(source, refusal=refusal.reason)
            return
        try:
            yield from self.expand(
                tree, source.ledger_path, source.athlete_id, depth=depth + 1, budget=budget, labels=source.labels
            )
        finally:
            tree.close()

    def expand(
        self, tree, origin: str, athlete: str, *, depth: int, budget: Budget, labels: PlatformLabels | None = None
    ) -> Iterator[SourceFile]:
        """The source files of a zip or export folder whose ledger name is `origin`."""
        layout: Layout = tree.layout
        roles = {name: layout.role(name) for name in tree.names}
        athlete = self._account_owner(tree, roles) or athlete
        table, unreadable = self._labels_table(tree, layout, roles)
        for name in tree.hidden:  # counted and visible in the ledger, never read
            yield SourceFile(
                Path(),
                athlete,
                origin=f"{origin}!{name}",
                modified_at=tree.modified_at(name),
                ignored="ignored: hidden archive member (a name starting with '.', or __MACOSX/)",
            )
        for name in tree.names:
            role, refusal = roles[name], tree.refusal(name)
            member = SourceFile(
                Path(),
                athlete,
                origin=f"{origin}!{name}" if isinstance(tree, _ZipTree) else f"{origin}/{name}",
                modified_at=tree.modified_at(name),
            )
            if name in unreadable:
                yield replace(member, path=unreadable[name][1], refusal=unreadable[name][0])
                continue
            if refusal is None and role in ("ignore", "garmin_summaries"):
                continue
            try:
                member = replace(member, path=tree.stage(name, self.staging))
            except Refused as refused:
                yield replace(member, path=refused.partial or member.path, refusal=refusal or refused.reason)
                continue
            if refusal is not None:
                yield replace(member, refusal=refusal)
            elif role == "activity":
                member_labels = labels
                if table is not None:
                    member_labels = PlatformLabels(
                        table, file=layout.file_key(name) if layout.platform == "strava" else None
                    )
                yield from self.dispatch(replace(member, labels=member_labels), name, depth=depth, budget=budget)
            else:
                yield replace(member, kind=role)

    def _account_owner(self, tree, roles: dict[str, str]) -> str | None:
        """The athlete whose platform account the export is, by athletes.toml, or None."""
        profiles = [n for n, role in roles.items() if role == "strava_profile" and tree.refusal(n) is None]
        if not profiles or not self.owners.strava_accounts:
            return None
        try:
            return self.owners.of_strava_export(tree.stage(profiles[0], self.staging))
        except Refused:
            return None

    def _labels_table(
        self, tree, layout: Layout, roles: dict[str, str]
    ) -> tuple[str | None, dict[str, tuple[str, Path]]]:
        """Stage and read the export's activity tables; write their labels for the activity files.

        Also returns the Garmin summaries that could not be read (name → reason, staged copy): they
        get a ledger row; a bad Strava table gets its own when it is decoded.
        """
        wanted = "strava_activities" if layout.platform == "strava" else "garmin_summaries"
        frames, unreadable = [], {}
        for name in (n for n, role in roles.items() if role == wanted and tree.refusal(n) is None):
            path = None
            try:
                path = tree.stage(name, self.staging)
                frames.append(_strava_labels(path) if layout.platform == "strava" else _garmin_labels(path))
            except Refused as refused:
                unreadable[name] = (refused.reason, refused.partial or Path(name))
            except DecodeError as error:
                if wanted == "garmin_summaries":
                    unreadable[name] = (str(error), path)
        if not frames:
            return None, unreadable
        table = write_labels(
            pl.concat(frames, how="diagonal"), self.staging.folder, f"{self.staging.count:06d}-{layout.platform}"
        )
        return table, unreadable


def _strava_labels(path: Path) -> pl.DataFrame:
    return strava.read_activities(path).with_columns(pl.lit("strava").alias("platform"))


def _garmin_labels(path: Path) -> pl.DataFrame:
    return garmin.read_summaries(path).with_columns(pl.lit("garmin").alias("platform"))
