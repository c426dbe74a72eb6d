# bash completion for clawvm (installed as DATADIR/bash-completion/completions/clawvm):
# its commands, their options (as vmm/cli.c has them), and paths for the options that take
# one. With bash-completion loaded, `--kernel=PATH` and `-v HOST:GUEST` complete too;
# without it (the file sourced by hand), only the separate-word forms do.

_clawvm_takes_value() {
	case $1 in
	-v | --volume | --rootfs | --cpus | --memory | --kernel | --initrd | --console-log | \
		--vsock-uds | --vsock-cid | -e | --env | --cwd) return 0 ;;
	esac
	return 1
}

_clawvm_paths() { # dirs|files
	if declare -F _filedir >/dev/null; then
		if [ "$1" = dirs ]; then _filedir -d; else _filedir; fi
		return
	fi
	compopt -o filenames 2>/dev/null
	if [ "$1" = dirs ]; then
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
	else
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
	fi
}

_clawvm() {
	# shellcheck disable=SC2034 # split: set by _init_completion -s
	local cur prev words cword split i
	local run_opts='-v --volume --rootfs --cpus --memory --kernel --initrd --console-log
		--vsock-uds --vsock-cid -t --tty -i --interactive --verbose -h --help'
	local exec_opts='--vsock-uds -t --tty -e --env --cwd -h --help'

	COMPREPLY=()
	if declare -F _init_completion >/dev/null; then
		# -s: `--kernel=PATH` gives prev --kernel and cur PATH; -n : keeps HOST:GUEST whole.
		_init_completion -s -n : || return
	else
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
		cur=${words[cword]}
		prev=${words[cword - 1]}
	fi

	if [ "$cword" -eq 1 ]; then
		mapfile -t COMPREPLY < <(compgen -W 'run exec --help --version' -- "$cur")
		return
	fi
	# Past `--`, or the first word that is neither an option nor an option's value, the
	# words are the guest command's own.
	for ((i = 2; i < cword; i++)); do
		case ${words[i]} in
		--) return ;;
		-*) _clawvm_takes_value "${words[i]}" && i=$((i + 1)) ;;
		*) return ;;
		esac
	done

	case $prev in
	--kernel | --initrd | --console-log | --vsock-uds) _clawvm_paths files ;;
	--rootfs) _clawvm_paths dirs ;;
	# The host directory; the guest path after the colon is the user's to write.
	-v | --volume) [[ $cur == *:* ]] || _clawvm_paths dirs ;;
	--cpus | --memory | --vsock-cid | -e | --env | --cwd) ;;
	*)
		case ${words[1]} in
		run) mapfile -t COMPREPLY < <(compgen -W "$run_opts" -- "$cur") ;;
		exec) mapfile -t COMPREPLY < <(compgen -W "$exec_opts" -- "$cur") ;;
		esac
		;;
	esac
}

complete -F _clawvm clawvm
