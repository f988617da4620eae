//! Choosing where training runs: CUDA when present, CPU otherwise, same code.

use std::fmt;
use std::str::FromStr;

use tch::Device;

/// What the user asked for on the command line (`--device auto|cpu|cuda[:N]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(n)) => Ok(Self::Cuda(n)),
                _ => Err(format!(
                    "unknown device `{s}`: use auto, cpu, cuda or cuda:N"
                )),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Error when CUDA was asked for explicitly but cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub struct NoCuda {
    pub requested: usize,
    pub available: usize,
}

impl fmt::Display for NoCuda {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--device cuda:{} requested but libtorch sees {} CUDA device(s); use --device cpu or auto",
            self.requested, self.available
        )
    }
}

impl std::error::Error for NoCuda {}

/// Resolves a choice against what libtorch sees. `Auto` picks CUDA device 0 when present.
pub fn resolve(choice: DeviceChoice) -> Result<Device, NoCuda> {
    let available = if tch::Cuda::is_available() {
        tch::Cuda::device_count() as usize
    } else {
        0
    };
    resolve_with(choice, available)
}

fn resolve_with(choice: DeviceChoice, available: usize) -> Result<Device, NoCuda> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto if available > 0 => Ok(Device::Cuda(0)),
        DeviceChoice::Auto => Ok(Device::Cpu),
        DeviceChoice::Cuda(n) if n < available => Ok(Device::Cuda(n)),
        DeviceChoice::Cuda(n) => Err(NoCuda {
            requested: n,
            available,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_choices() {
        for s in ["auto", "cpu", "cuda:0", "cuda:3"] {
            assert_eq!(s.parse::<DeviceChoice>().unwrap().to_string(), s);
        }
        assert_eq!(
            "cuda".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(0)
        );
        assert!("gpu".parse::<DeviceChoice>().is_err());
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn resolution_against_device_count() {
        assert_eq!(resolve_with(DeviceChoice::Auto, 0), Ok(Device::Cpu));
        assert_eq!(resolve_with(DeviceChoice::Auto, 2), Ok(Device::Cuda(0)));
        assert_eq!(resolve_with(DeviceChoice::Cuda(1), 2), Ok(Device::Cuda(1)));
        assert_eq!(
            resolve_with(DeviceChoice::Cuda(2), 2),
            Err(NoCuda {
                requested: 2,
                available: 2
            })
        );
        assert_eq!(resolve_with(DeviceChoice::Cpu, 4), Ok(Device::Cpu));
    }

    #[test]
    fn libtorch_runs_on_the_resolved_device() {
        let dev = resolve(DeviceChoice::Auto).unwrap();
        let t = tch::Tensor::from_slice(&[1.0f32, 2.0, 3.0]).to_device(dev);
        let s = (&t * &t).sum(tch::Kind::Float).to_device(Device::Cpu);
        assert_eq!(f32::try_from(s).unwrap(), 14.0);
    }
}
